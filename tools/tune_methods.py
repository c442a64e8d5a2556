"""Table 1 with every method tuned by one protocol (issue 16).

A thin command-line entry point of l2t_tf/experiments/tune_methods.py.
"""
from l2t_tf.experiments.tune_methods import main

if __name__ == "__main__":
  main()
