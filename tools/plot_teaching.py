"""Plots the per-round teaching diagnostics of runs (issue 12).

A thin command-line entry point of l2t_tf/experiments/plot_teaching.py.
"""
from l2t_tf.experiments.plot_teaching import main

if __name__ == "__main__":
  main()
