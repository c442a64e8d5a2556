"""Turns run directories into the paper's tables (Markdown and JSON).

A thin command-line entry point of l2t_tf/experiments/make_table.py.
"""
from l2t_tf.experiments.make_table import main

if __name__ == "__main__":
  main()
