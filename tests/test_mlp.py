"""The shared MLP (l2t_tf/mlp.py): weights, names, forward pass."""
from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import mlp


def _numpy_forward(x, kernels, biases, activation):
  for i, kernel in enumerate(kernels):
    x = np.tensordot(x, kernel, 1) + (biases[i] if biases else 0.0)
    if i < len(kernels) - 1:
      x = activation(x)
  return x


class MLPTest(tf.test.TestCase, parameterized.TestCase):

  def test_keras_weights_in_creation_order_with_new_initializers(self):
    layer = keras.layers.Layer(dtype="float64")
    kernels, biases = mlp.create_weights(
        layer.add_weight, (3, 5, 5, 2),
        lambda i, last: "zeros" if last else keras.initializers.RandomNormal(),
        lambda i, last: "ones")
    self.assertEqual([v.name for v in layer.weights], [
        "kernel_0", "bias_0", "kernel_1", "bias_1", "kernel_2", "bias_2"])
    self.assertEqual([tuple(k.shape) for k in kernels],
                     [(3, 5), (5, 5), (5, 2)])
    self.assertEqual([tuple(b.shape) for b in biases], [(5,), (5,), (2,)])
    self.assertAllEqual(kernels[2], np.zeros((5, 2)))
    self.assertAllEqual(biases[0], np.ones(5))
    # One initializer instance per kernel: different seeds, no shared prefix.
    self.assertNotAllClose(kernels[0].numpy().ravel()[:15],
                           kernels[1].numpy().ravel()[:15])

  def test_no_biases(self):
    layer = keras.layers.Layer()
    _, biases = mlp.create_weights(layer.add_weight, (2, 4, 1),
                                   lambda i, last: "ones")
    self.assertEqual(biases, [])
    self.assertLen(layer.weights, 2)

  @parameterized.parameters(("float32", False), ("float64", True))
  def test_forward_matches_numpy(self, dtype, tensordot):
    rng = np.random.default_rng(0)
    kernels = [rng.normal(size=s) for s in ((4, 6), (6, 3))]
    biases = [rng.normal(size=6), rng.normal(size=3)]
    x = rng.normal(size=(2, 5, 4) if tensordot else (5, 4))
    got = mlp.forward(tf.constant(x, dtype), kernels, biases, tf.tanh,
                      tensordot=tensordot)
    self.assertEqual(got.dtype, dtype)
    self.assertAllClose(got, _numpy_forward(x, kernels, biases, np.tanh),
                        rtol=1e-5 if dtype == "float32" else 1e-12)
    no_bias = mlp.forward(tf.constant(x, dtype), kernels, [], tf.nn.relu,
                          tensordot=tensordot)
    self.assertAllClose(no_bias, _numpy_forward(
        x, kernels, [], lambda v: np.maximum(v, 0.0)), rtol=1e-5)

  def test_stateless_variables_ignore_the_global_seed(self):
    values = []
    for global_seed in (0, 1):
      keras.utils.set_random_seed(global_seed)
      kernels, biases = mlp.create_weights(
          mlp.variable_creator(tf.float64), (3, 4, 2),
          lambda i, last: (mlp.zeros if last else
                           mlp.stateless_glorot_uniform([7, i])),
          lambda i, last: mlp.zeros, prefix="policy_")
      values.append([v.numpy() for v in kernels + biases])
    self.assertEqual([v.name for v in kernels + biases], [
        "policy_kernel_0:0", "policy_kernel_1:0", "policy_bias_0:0",
        "policy_bias_1:0"])
    self.assertEqual(kernels[0].dtype, tf.float64)
    for first, second in zip(*values, strict=True):
      self.assertAllEqual(first, second)
    self.assertLessEqual(np.abs(values[0][0]).max(), np.sqrt(6.0 / 7.0))
    self.assertAllEqual(values[0][1], np.zeros((4, 2)))


if __name__ == "__main__":
  tf.test.main()
