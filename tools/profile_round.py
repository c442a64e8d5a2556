"""Where the time of one L2T-DLN teaching round goes; prints one JSON line.

A thin command-line entry point of
l2t_tf/experiments/profile_round.py, run as
`python -m l2t_tf.experiments.profile_round` runs it: its absl flags are
then the main module's, which `--help` lists.
"""
import runpy

if __name__ == "__main__":
  runpy.run_module("l2t_tf.experiments.profile_round",
                   run_name="__main__", alter_sys=True)
