"""Synchronised BatchNorm (issue 15): several replicas give one device's result.

In-process: the gin knob and, on one replica, the unchanged graph. The
2-replica checks run in fresh processes (logical devices must be configured
before TensorFlow starts; see tests/sync_bn_check.py), started together in
`setUpClass` to fit the time budget of a loaded machine:
* the digits BatchNorm student's hypergradient and two teaching rounds
  (unrolled mode), synchronised and per replica;
* float64, both modes: the hypergradient through N = 2 steps against one
  device on the whole batch and against central finite differences.
"""
import json
import os
import subprocess
import sys

import gin
import numpy as np
import tensorflow as tf

from l2t_tf.students import batch_norm

CHECK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "sync_bn_check.py")
RUNS = {"trainer": ["trainer", "unrolled"], "exact": ["exact"]}
TIMEOUT_S = 900


def _layer_graph(layer, x):
  """Op types of a training-mode call of `layer` on x, in graph order."""
  graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(
      x).graph
  return [op.type for op in graph.get_operations()]


class SyncKnobTest(tf.test.TestCase):

  def tearDown(self):
    gin.clear_config()
    super().tearDown()

  def test_on_by_default_off_by_gin_or_argument(self):
    self.assertTrue(batch_norm.BatchNormalization().sync)
    self.assertFalse(batch_norm.BatchNormalization(sync=False).sync)
    gin.bind_parameter("sync_batch_norm.enabled", False)
    self.assertFalse(batch_norm.BatchNormalization().sync)
    self.assertTrue(batch_norm.BatchNormalization(sync=True).sync)

  def test_config_round_trip_keeps_sync(self):
    layer = batch_norm.BatchNormalization(sync=False)
    self.assertFalse(batch_norm.BatchNormalization.from_config(
        layer.get_config()).sync)

  def test_one_replica_runs_the_unsynchronised_graph(self):
    """Same ops, same values, bit for bit; nothing is all-reduced."""
    x = tf.constant(np.random.default_rng(0).normal(size=(6, 4, 4, 3)),
                    tf.float32)
    layers = [batch_norm.BatchNormalization(sync=s, momentum=0.5)
              for s in (True, False)]
    graphs = [_layer_graph(layer, x) for layer in layers]
    self.assertEqual(graphs[0], graphs[1])
    self.assertFalse([t for t in graphs[0] if "Collective" in t])
    outputs = []
    for layer in layers:
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.sin(y))
      outputs.append([y, *tape.gradient(loss, [x, layer.gamma, layer.beta]),
                      layer.moving_mean, layer.moving_variance])
    for a, b in zip(*outputs):
      self.assertAllEqual(a, b)


class TwoReplicaTest(tf.test.TestCase):
  """2 logical CPUs (MirroredStrategy) against one device."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (os.path.dirname(CHECK), os.environ.get("PYTHONPATH"))
        if p))
    cls.processes = {
        name: subprocess.Popen([sys.executable, CHECK] + args, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        for name, args in RUNS.items()}
    cls.reports = {}
    for name, process in cls.processes.items():
      try:
        out, err = process.communicate(timeout=TIMEOUT_S)
      except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
      cls.reports[name] = (process.returncode, out, err)

  def _report(self, name):
    code, out, err = self.reports[name]
    self.assertEqual(code, 0, err[-4000:])
    return json.loads(out.strip().splitlines()[-1])

  def test_digits_student_matches_one_device(self):
    """Unrolled mode; the float64 test covers both modes."""
    report = self._report("trainer")
    self.assertEqual(report["replicas"], 2)
    sync, per_replica = report["sync"], report["per_replica"]
    norm = sync["hypergradient_norm"]
    self.assertGreater(norm, 1e-3)
    # Stage I+II: the same hypergradient and e_1 to float32 round-off.
    self.assertLess(sync["hypergradient_diff"], 1e-5 * norm)
    self.assertLess(sync["validation_error_diff"], 1e-5)
    # Two more rounds: the same metrics, students, DLN, teacher, accuracy.
    self.assertLess(sync["round_metric_diff"], 1e-5)
    self.assertLess(sync["state_diff"], 2e-5)
    self.assertEqual(sync["test_accuracy_diff"], 0.0)
    # Per-replica statistics (2 x 5 examples) are another computation.
    self.assertGreater(per_replica["hypergradient_diff"], 1e-2 * norm)
    self.assertGreater(per_replica["state_diff"], 1e-2)

  def test_float64_hypergradient_is_exact(self):
    report = self._report("exact")
    for case in ("unrolled_train", "reverse_train", "unrolled_inference"):
      result = report[case]
      # The whole-batch hypergradient, second derivatives included.
      self.assertLess(result["gradient_rel_diff"], 1e-12, case)
      self.assertLess(result["error_diff"], 1e-12, case)
      self.assertLess(result["moving_statistics_spread"], 1e-12, case)
      if "finite_difference_rel_diff" in result:
        self.assertLess(result["finite_difference_rel_diff"], 1e-6, case)
    per_replica = report["unrolled_train_per_replica"]
    self.assertGreater(per_replica["gradient_rel_diff"], 1e-2)
    self.assertGreater(per_replica["moving_statistics_spread"], 1e-3)
    # The fused kernel only sees its replica's shard: not when synchronising.
    self.assertFalse(report["fused_kernel_runs_sync"])
    self.assertTrue(report["fused_kernel_runs_per_replica"])


if __name__ == "__main__":
  tf.test.main()
