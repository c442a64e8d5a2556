"""Runs one experiment over several seeds and tabulates the results.

A thin command-line entry point of l2t_tf/experiments/run_seeds.py.
"""
from l2t_tf.experiments.run_seeds import main

if __name__ == "__main__":
  main()
