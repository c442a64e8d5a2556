"""BatchNormalization whose second derivatives are exact.

Keras 3's BatchNormalization (TensorFlow backend) takes its training-mode
statistics from `tf.nn.moments`, which computes the variance as
mean((x - stop_gradient(mean(x)))^2). The stop_gradient leaves the *first*
derivative unchanged (d var / d mean = 0 at the batch mean), but not the
second: the gradient's own dependence on the mean is dropped, so a
Hessian-vector product through it is wrong. Differentiating through N > 1
SGD steps of a BatchNorm student (Eq. 4-6) then gives an inexact
hypergradient (measured: a float64 central difference disagreed already in
sign at N = 2, while N = 1 agreed to 1e-10).

`BatchNormalization` here is Keras' layer with the statistics computed
without stop_gradient, mean((x - mean(x))^2): the same values, exact in
every order. Every student of the package uses it; `exact_batch_norm()`
swaps it in while a third-party model (keras.applications' NASNet) is built.
"""
import contextlib

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="l2t_tf")
class BatchNormalization(keras.layers.BatchNormalization):
  """`keras.layers.BatchNormalization` with second-order-exact moments."""

  def _moments(self, inputs, mask):
    if mask is not None or self.synchronized:
      return super()._moments(inputs, mask)
    axes = self._reduction_axes
    mean = tf.reduce_mean(inputs, axis=axes, keepdims=True)
    variance = tf.reduce_mean(tf.square(inputs - mean), axis=axes)
    return tf.squeeze(mean, axes), variance


@contextlib.contextmanager
def exact_batch_norm():
  """Builds models that name `keras.layers.BatchNormalization` with ours."""
  from keras.src import layers as src_layers  # pylint: disable=g-import-not-at-top
  originals = (keras.layers.BatchNormalization,
               src_layers.BatchNormalization)
  keras.layers.BatchNormalization = BatchNormalization
  src_layers.BatchNormalization = BatchNormalization
  try:
    yield
  finally:
    keras.layers.BatchNormalization, src_layers.BatchNormalization = originals
