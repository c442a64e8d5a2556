"""Runs the same teaching rounds on one device and on 2 logical CPUs.

Run as a fresh process (logical devices must be set before any TF op); prints
one JSON line with the largest differences. Used by test_distributed.py.
"""
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # pylint: disable=g-import-not-at-top

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # pylint: disable=g-import-not-at-top
import trainer_testlib as lib  # pylint: disable=g-import-not-at-top


def _max_diff(xs, ys):
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
             for x, y in zip(xs, ys))


def main():
  mode = sys.argv[1] if len(sys.argv) > 1 else "unrolled"
  root = tempfile.mkdtemp()
  task = lambda: lib.tiny_task(student=lib.dense_student)
  kwargs = dict(hypergradient_mode=mode)
  single = lib.tiny_trainer(os.path.join(root, "single"), task=task(), **kwargs)
  mirrored = lib.tiny_trainer(
      os.path.join(root, "mirrored"), task=task(),
      strategy=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), **kwargs)
  data, _ = single.epoch_rounds(0)
  rounds = list(data.take(3))
  train, val = rounds[0]
  first = tuple(t[0] for t in train)
  s1 = single.round._stage1(first, val)  # pylint: disable=protected-access
  m1 = mirrored.round._stage1(first, val)  # pylint: disable=protected-access
  report = {
      "replicas": mirrored.strategy.num_replicas_in_sync,
      "hypergradient_norm": float(s1["hypergradient_norm"]),
      "hypergradient_diff": _max_diff(s1["gradients"], m1["gradients"]),
      "validation_error_diff": abs(float(s1["validation_error"]) -
                                   float(m1["validation_error"])),
  }
  metric_diffs = []
  for train, val in rounds[1:]:
    a = single.round(train, val).diagnostics
    b = mirrored.round(train, val).diagnostics
    metric_diffs += [abs(a[k] - b[k]) for k in ("e1", "e2",
                                                "hypergradient_norm")]
  report["round_metric_diff"] = max(metric_diffs)
  report["state_diff"] = _max_diff(single.checkpoint_variables(),
                                   mirrored.checkpoint_variables())
  report["dln_diff"] = _max_diff(single.dln.trainable_variables,
                                 mirrored.dln.trainable_variables)
  report["dln_moved"] = _max_diff(
      single.dln.trainable_variables,
      lib.tiny_trainer(os.path.join(root, "fresh"),
                       task=task()).dln.trainable_variables)
  print(json.dumps(report))


if __name__ == "__main__":
  main()
