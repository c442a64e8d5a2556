"""The student BatchNorm: fused forward, second-order-exact backward (issue 13).

The float32 fused path cannot be checked by float64 finite differences (the
CPU kernel is float32 only), so the reference is the float64 composite path,
itself checked by finite differences in `test_hypergradient.py`, run on the
same weights and data.
"""
from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import hypergradient
from l2t_tf.students import batch_norm
from l2t_tf.students import cifar_resnet


class TensorFlowGradientBatchNorm(batch_norm.BatchNormalization):
  """The fused kernel with TensorFlow's registered (inexact) gradient."""

  def call(self, inputs, training=None, mask=None):
    if not self._fusable(inputs, training, mask):
      return super().call(inputs, training=training, mask=mask)
    outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=self.gamma.value, offset=self.beta.value,
        mean=tf.zeros([0]), variance=tf.zeros([0]), epsilon=self.epsilon,
        data_format="NHWC", is_training=True)
    return outputs


def _resnet(dtype, layer=batch_norm.BatchNormalization, fused=True):
  """A ResNet8 at width 4 on 8x8 images: two residual blocks with shortcuts."""
  original = cifar_resnet.batch_norm.BatchNormalization
  cifar_resnet.batch_norm.BatchNormalization = (
      lambda **kwargs: layer(fused=fused, **kwargs))
  try:
    return cifar_resnet.cifar_resnet(input_shape=(8, 8, 3), depth=8, width=4,
                                     dtype=dtype)
  finally:
    cifar_resnet.batch_norm.BatchNormalization = original


def _problem(n=3):
  rng = np.random.default_rng(0)
  batches = [(rng.normal(size=(6, 8, 8, 3)), rng.integers(0, 10, 6))
             for _ in range(n)]
  val = (rng.normal(size=(7, 8, 8, 3)), rng.integers(0, 10, 7))
  return batches, val


def _hypergradient(student, weights, dln_weights, dtype, mode,
                   validation_training):
  """de_val/dphi after N = 3 steps, as one flat float64 vector."""
  student.set_weights([w.astype(dtype) for w in weights])
  dln = dln_lib.PairwiseDLN(hidden_units=(8, 8), dtype=dtype)
  batches, (xv, yv) = _problem()
  dln(yv.astype(np.int32), student(xv.astype(dtype)))
  dln.set_weights([w.astype(dtype) for w in dln_weights])
  batches = [(x.astype(dtype), y.astype(np.int32)) for x, y in batches]
  grads, _ = hypergradient.unrolled_hypergradient(
      student, dln, batches, (xv.astype(dtype), yv.astype(np.int32)), 0.5,
      mode=mode, validation_training=validation_training)
  return np.concatenate([g.numpy().astype(np.float64).ravel() for g in grads])


def _relative_error(a, reference):
  return np.abs(a - reference).max() / np.abs(reference).max()


class FusedBatchNormTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    keras.utils.set_random_seed(0)
    self.weights = _resnet("float32").get_weights()
    dln = dln_lib.PairwiseDLN(hidden_units=(8, 8))
    dln(np.zeros(2, np.int32), np.zeros((2, 10), np.float32))
    self.dln_weights = dln.get_weights()

  def _reference(self, mode, validation_training):
    return _hypergradient(_resnet("float64"), self.weights, self.dln_weights,
                          "float64", mode, validation_training)

  @parameterized.product(mode=hypergradient.MODES,
                         validation_training=[True, False])
  def test_fused_hypergradient_matches_the_float64_composite(
      self, mode, validation_training):
    """Float32 rounding only; TensorFlow's own gradient is > 1e-2 off."""
    fused = _hypergradient(_resnet("float32"), self.weights, self.dln_weights,
                           "float32", mode, validation_training)
    reference = self._reference(mode, validation_training)
    self.assertLess(_relative_error(fused, reference), 1e-5)

  def test_tensorflows_fused_gradient_is_not_second_order_exact(self):
    """Why the layer writes its own backward pass.

    If this fails, TensorFlow's gradient of FusedBatchNormGradV3 has become
    exact in this use and `_fused_training_batch_norm` could rely on it.
    """
    student = _resnet("float32", layer=TensorFlowGradientBatchNorm)
    theirs = _hypergradient(student, self.weights, self.dln_weights,
                            "float32", "unrolled", True)
    self.assertGreater(_relative_error(theirs,
                                       self._reference("unrolled", True)),
                       1e-2)

  @parameterized.parameters(True, False)
  def test_the_fused_kernel_runs_only_when_asked(self, fused):
    student = _resnet("float32", fused=fused)
    x = tf.zeros((2, 8, 8, 3))
    graph = tf.function(lambda x: student(x, training=True)
                        ).get_concrete_function(x).graph
    ops = {op.type for op in graph.get_operations()}
    self.assertEqual("FusedBatchNormV3" in ops, fused)

  def test_outputs_and_moving_statistics_match_the_composite(self):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(2.0, 3.0, size=(5, 4, 4, 6)), tf.float32)
    layers = [batch_norm.BatchNormalization(fused=f, momentum=0.5)
              for f in (True, False)]
    outputs = [layer(x, training=True) for layer in layers]
    self.assertAllClose(outputs[0], outputs[1], atol=2e-5)
    for name in ("moving_mean", "moving_variance"):
      self.assertAllClose(getattr(layers[0], name), getattr(layers[1], name),
                          rtol=1e-5)
    self.assertAllClose(  # Inference uses the moving statistics, unfused.
        layers[0](x, training=False), layers[1](x, training=False),
        rtol=1e-5, atol=1e-5)

  def test_config_round_trip_keeps_fused(self):
    layer = batch_norm.BatchNormalization(fused=False, momentum=0.9)
    clone = batch_norm.BatchNormalization.from_config(layer.get_config())
    self.assertFalse(clone.fused)
    self.assertEqual(clone.momentum, 0.9)


if __name__ == "__main__":
  tf.test.main()
