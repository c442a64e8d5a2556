"""Our teaching round against the PyTorch peer's, interleaved; one JSON line.

A thin command-line entry point of
l2t_tf/experiments/speed_vs_peer.py, run as
`python -m l2t_tf.experiments.speed_vs_peer` runs it: its absl flags are
then the main module's, which `--help` lists.
"""
import runpy

if __name__ == "__main__":
  runpy.run_module("l2t_tf.experiments.speed_vs_peer",
                   run_name="__main__", alter_sys=True)
