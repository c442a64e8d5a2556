"""What the update guard sees: e_2 - e_1 against the noise of e_val.

A thin command-line entry point of l2t_tf/experiments/guard_statistics.py.
"""
from l2t_tf.experiments.guard_statistics import main

if __name__ == "__main__":
  main()
