"""Synchronised BatchNorm on 2 logical CPUs against one device (issue 15).

Run as a fresh process (logical devices must be set before any TF op):

  python sync_bn_check.py trainer <unrolled|reverse>
  python sync_bn_check.py exact

prints one JSON line. `trainer`: the stage I+II hypergradient and two more
teaching rounds of the digits BatchNorm student (`trainer_testlib`'s default
task), one device against MirroredStrategy with synchronised statistics
(`sync`) and with per-replica statistics (`per_replica`). `exact`: float64,
the hypergradient de_val/dphi through N = 2 SGD steps of a conv + BatchNorm
student on 2 replicas against one device on the whole batch, and against a
central finite difference of the 2-replica e_val. Used by students/test_batch_norm_sync.py.
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
import gin  # pylint: disable=g-import-not-at-top
import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from l2t_tf import dln as dln_lib  # pylint: disable=g-import-not-at-top
from l2t_tf import hypergradient  # pylint: disable=g-import-not-at-top
from l2t_tf import build  # pylint: disable=g-import-not-at-top
from l2t_tf.rounds import base  # pylint: disable=g-import-not-at-top
from l2t_tf.students import batch_norm  # pylint: disable=g-import-not-at-top
from l2t_tf.students import digits_cnn  # pylint: disable=g-import-not-at-top
import gradcheck  # pylint: disable=g-import-not-at-top
import trainer_testlib as lib  # pylint: disable=g-import-not-at-top

DEVICES = ["/cpu:0", "/cpu:1"]
LR = 0.5


def _trainer(model_dir, sync, strategy=None, mode="unrolled"):
  """`trainer_testlib.tiny_trainer` of the BatchNorm student, sync bound."""
  gin.clear_config()
  gin.bind_parameter("sync_batch_norm.enabled", sync)
  return build.build(
      lib.tiny_task(), model_dir, strategy or tf.distribute.get_strategy(),
      **dict(lib.TINY, hypergradient_mode=mode))


def _compare_trainers(single, mirrored, rounds):
  """`trainer_testlib.compare_trainers` (relative state) and test accuracy."""
  report = lib.compare_trainers(single, mirrored, rounds, relative=True)
  accuracy = [t.task.evaluate(t.student, t.test_data)["test_accuracy"]
              for t in (single, mirrored)]
  report["test_accuracy_diff"] = abs(accuracy[0] - accuracy[1])
  return report


def trainer_check(mode):
  root = tempfile.mkdtemp()
  # One strategy: a second one would reuse its collective keys, which the
  # runtime has already bound to the first one's shapes.
  strategy = tf.distribute.MirroredStrategy(DEVICES)
  report = {"replicas": strategy.num_replicas_in_sync}
  for name, sync in (("sync", True), ("per_replica", False)):
    single = _trainer(os.path.join(root, name + "_single"), sync, mode=mode)
    mirrored = _trainer(os.path.join(root, name + "_mirrored"), sync,
                        strategy, mode)
    data, _ = single.epoch_rounds(0)
    report[name] = _compare_trainers(single, mirrored, list(data.take(3)))
  return report


def _problem(n=2, batch=6, validation=8):
  rng = np.random.default_rng(0)
  xs = rng.normal(1.0, 2.0, size=(n, batch, 8, 8, 1))
  ys = rng.integers(0, 10, size=(n, batch)).astype(np.int32)
  val = (rng.normal(1.0, 2.0, size=(validation, 8, 8, 1)),
         rng.integers(0, 10, validation).astype(np.int32))
  return (xs, ys), val


def _models(weights=None, dln_weights=None):
  """A float64 digits CNN (3 BatchNorms) and a PairwiseDLN, built."""
  keras.utils.set_random_seed(0)
  student = digits_cnn.digits_cnn(widths=(4, 8, 8), dtype="float64")
  dln = dln_lib.PairwiseDLN(hidden_units=(8, 8), dtype="float64")
  dln(np.zeros(2, np.int32), np.zeros((2, 10)))
  if weights is not None:
    student.set_weights(weights)
    dln.set_weights(dln_weights)
  return student, dln


def _mirrored_unroll(strategy, student, dln, mode, validation_training):
  """(batches, validation) -> (de_val/dphi, e_val, spread), sharded.

  The spread is max |replica 0 - replica 1| of the moving statistics after
  the N steps (0 if the replicas stay identical).
  """
  @hypergradient.function
  def unroll(batches, validation):
    def replica_fn(batches, validation):
      result = hypergradient.unroll(
          hypergradient.stateless_apply(student),
          [v.value for v in student.trainable_variables],
          [v.value for v in student.non_trainable_variables], dln,
          hypergradient.sparse_cross_entropy, base.shard(batches, 1),
          base.shard(validation, 0), LR, dln.trainable_variables, mode,
          validation_training)
      return result.gradients, result.validation_error, result.non_trainable
    grads, error, state = strategy.run(replica_fn, (batches, validation))
    reduce = lambda t: strategy.reduce(base.MEAN, t, axis=None)
    spread = tf.reduce_max([  # Of the moving statistics, replica 0 vs 1.
        tf.reduce_max(tf.abs(tf.subtract(*strategy.experimental_local_results(
            s)))) for s in state])
    return [reduce(g) for g in grads], reduce(error), spread
  return unroll


def _relative(a, b):
  a = np.concatenate([np.ravel(t) for t in a])
  b = np.concatenate([np.ravel(t) for t in b])
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


#: (mode, validation_training) of the float64 check; e_val in inference
#: mode uses the moving statistics, carried as constants (not differentiated,
#: Eq. 4-6), so only training mode has a finite difference to match.
EXACT_CASES = (("unrolled", True), ("reverse", True), ("unrolled", False))


def _exact_case(strategy, single, weights, mode, validation_training, sync):
  """One float64 case: the 2-replica hypergradient against one device's."""
  batches, val = _problem()
  student, dln = single
  reference, error = hypergradient.unrolled_hypergradient(
      student, dln, list(zip(*batches)), val, LR, mode=mode,
      validation_training=validation_training)
  gin.bind_parameter("sync_batch_norm.enabled", sync)
  with strategy.scope():
    student, dln = _models(*weights)
  unroll = _mirrored_unroll(strategy, student, dln, mode, validation_training)
  grads, mirrored_error, spread = unroll(batches, val)
  report = {"gradient_rel_diff": _relative(grads, reference),
            "error_diff": abs(float(mirrored_error) - float(error)),
            "moving_statistics_spread": float(spread)}
  if validation_training:
    analytic, difference = gradcheck.directional_check(
        dln.trainable_variables, lambda: unroll(batches, val)[1], grads,
        eps=1e-5, seed=1)
    report["finite_difference_rel_diff"] = (abs(analytic - difference) /
                                            abs(difference))
  return report


def _fused_kernel_runs(strategy):
  """Whether a fused=True layer runs FusedBatchNormV3 on 2 replicas."""
  layer = batch_norm.BatchNormalization(fused=True)
  x = tf.zeros((4, 2, 2, 3))
  with strategy.scope():
    layer.build(x.shape)
  graph = tf.function(lambda x: strategy.run(
      lambda x: layer(x, training=True), (x,))).get_concrete_function(x).graph
  return any(op.type == "FusedBatchNormV3" for op in graph.get_operations())


def exact_check():
  """Float64: 2 synchronised replicas vs one device, and finite differences."""
  single = _models()
  weights = (single[0].get_weights(), single[1].get_weights())
  strategy = tf.distribute.MirroredStrategy(DEVICES)
  report = {}
  for mode, validation_training in EXACT_CASES:
    key = f"{mode}_{'train' if validation_training else 'inference'}"
    report[key] = _exact_case(strategy, single, weights, mode,
                              validation_training, sync=True)
  report["unrolled_train_per_replica"] = _exact_case(
      strategy, single, weights, "unrolled", True, sync=False)
  for sync in (True, False):
    gin.bind_parameter("sync_batch_norm.enabled", sync)
    report[f"fused_kernel_runs_{'sync' if sync else 'per_replica'}"] = (
        _fused_kernel_runs(strategy))
  gin.clear_config()
  return report


def main():
  if sys.argv[1] == "trainer":
    report = trainer_check(sys.argv[2])
  else:
    report = exact_check()
  print(json.dumps(report))


if __name__ == "__main__":
  main()
