"""Runs every method of a Table 1-style comparison over seeds; one table.

A thin command-line entry point of l2t_tf/experiments/compare_methods.py.
"""
from l2t_tf.experiments.compare_methods import main

if __name__ == "__main__":
  main()
