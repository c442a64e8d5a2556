"""Table 5's time column: seconds per teacher round against the unroll length N.

A thin command-line entry point of l2t_tf/experiments/table5_time.py.
"""
from l2t_tf.experiments.table5_time import main

if __name__ == "__main__":
  main()
