"""Does the warm-started DLN learn like CE? Its student gradient against CE's.

A thin command-line entry point of l2t_tf/experiments/dln_gradient_ratio.py.
"""
from l2t_tf.experiments.dln_gradient_ratio import main

if __name__ == "__main__":
  main()
