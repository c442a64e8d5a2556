"""Does L2T-DLN teach beyond digits? The cross-data-set benchmark (issue 23).

A thin command-line entry point of l2t_tf/experiments/generalization.py.
"""
from l2t_tf.experiments.generalization import main

if __name__ == "__main__":
  main()
