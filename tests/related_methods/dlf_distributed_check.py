"""L2T-DLF rounds on one device and on 2 logical CPUs (MirroredStrategy).

Run as a fresh process (logical devices must be set before any TF op); prints
one JSON line with the largest differences. Used by test_l2t_dlf.py.
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))  # tests/, for trainer_testlib.
import numpy as np  # pylint: disable=g-import-not-at-top
import trainer_testlib as lib  # pylint: disable=g-import-not-at-top
from l2t_tf.related_methods import l2t_dlf  # pylint: disable=g-import-not-at-top


def _trainer(model_dir, strategy=None):
  return lib.tiny_trainer(
      model_dir, task=lib.tiny_task(student=lib.dense_student,
                                    dln=l2t_dlf.dlf_loss),
      strategy=strategy, updater=l2t_dlf.DLFTeacherUpdater, unroll_length=1,
      train_comparison=False, teacher_epochs=1)


def main():
  root = tempfile.mkdtemp()
  single = _trainer(os.path.join(root, "single"))
  mirrored = _trainer(os.path.join(root, "mirrored"),
                      tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
  phi0 = [v.numpy() for v in single.dln.trainable_variables]
  data, rounds = single.epoch_rounds(0)
  metric_diffs = []
  for i, (train, val) in enumerate(data):
    a = single.round(train, val, progress=i / rounds).diagnostics
    b = mirrored.round(train, val, progress=i / rounds).diagnostics
    metric_diffs += [abs(a[k] - b[k]) / max(abs(a[k]), 1e-6) for k in (
        "e1", "hypergradient_norm", "teacher_gradient_norm", "dlf_step_norm")]
  state_diff = max(float(np.max(np.abs(x - y))) for x, y in zip(
      lib.state_of(single), lib.state_of(mirrored)))
  print(json.dumps({
      "replicas": mirrored.strategy.num_replicas_in_sync,
      "rounds": rounds,
      "round_metric_rel_diff": max(metric_diffs),
      "state_diff": state_diff,
      "dln_moved": max(float(np.max(np.abs(v.numpy() - w))) for v, w in zip(
          single.dln.trainable_variables, phi0)),
  }))


if __name__ == "__main__":
  main()
