"""The learned DLN as a loss for a model it never taught (docs/results.md).

A thin command-line entry point of l2t_tf/experiments/reuse_dln.py.
"""
from l2t_tf.experiments.reuse_dln import main

if __name__ == "__main__":
  main()
