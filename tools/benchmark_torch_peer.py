"""A PyTorch peer of one L2T-DLN teaching round; prints one JSON line.

A thin command-line entry point of
l2t_tf/experiments/benchmark_torch_peer.py, which it runs by its file path,
as a script: importing `l2t_tf.experiments.benchmark_torch_peer` would
import the l2t_tf package, whose __init__ loads TensorFlow into the peer's
process. The package is found (`find_spec`), not imported.
"""
import importlib.util
import os
import runpy

if __name__ == "__main__":
  _PACKAGE = importlib.util.find_spec("l2t_tf").submodule_search_locations[0]
  runpy.run_path(
      os.path.join(_PACKAGE, "experiments", "benchmark_torch_peer.py"),
      run_name="__main__")
