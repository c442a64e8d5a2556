"""Why ALA and the adaptive robust loss trail CE after tuning (issue 16).

A thin command-line entry point of l2t_tf/experiments/baseline_diagnostics.py.
"""
from l2t_tf.experiments.baseline_diagnostics import main

if __name__ == "__main__":
  main()
