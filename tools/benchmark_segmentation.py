"""Times L2T-DLN teacher rounds of PSPNet; prints one JSON line.

A thin command-line entry point of
l2t_tf/experiments/benchmark_segmentation.py, run as
`python -m l2t_tf.experiments.benchmark_segmentation` runs it: its absl
flags are then the main module's, which `--help` lists.
"""
import runpy

if __name__ == "__main__":
  runpy.run_module("l2t_tf.experiments.benchmark_segmentation",
                   run_name="__main__", alter_sys=True)
