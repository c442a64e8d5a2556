"""Each Table 1 loss's student gradient at initialisation, against CE's.

A thin command-line entry point of l2t_tf/experiments/gradient_scale.py.
"""
from l2t_tf.experiments.gradient_scale import main

if __name__ == "__main__":
  main()
