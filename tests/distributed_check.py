"""Runs the same teaching rounds on one device and on 2 logical CPUs.

Run as a fresh process (logical devices must be set before any TF op); prints
one JSON line with the largest differences. Used by test_strategy.py.
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
import trainer_testlib as lib  # pylint: disable=g-import-not-at-top


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
  report = dict(lib.compare_trainers(single, mirrored, rounds),
                replicas=mirrored.strategy.num_replicas_in_sync)
  report["dln_diff"] = lib.max_diff(single.dln.trainable_variables,
                                    mirrored.dln.trainable_variables)
  report["dln_moved"] = lib.max_diff(
      single.dln.trainable_variables,
      lib.tiny_trainer(os.path.join(root, "fresh"),
                       task=task()).dln.trainable_variables)
  print(json.dumps(report))


if __name__ == "__main__":
  main()
