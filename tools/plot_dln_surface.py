"""Draws the paper's Figure 3: the learned DLN loss surface per teacher epoch.

A thin command-line entry point of l2t_tf/experiments/plot_dln_surface.py.
"""
from l2t_tf.experiments.plot_dln_surface import main

if __name__ == "__main__":
  main()
