"""The warm start's scale (issue 23): (W1)'s gradient is half of CE's.

The closed form of `dln_warm_start`'s docstring, checked on the target
itself in float64 for several class counts, and on a fitted DLN: with
`scale=2` the warm-started DLN's logit gradient is CE's at zero logits (to
the fit's error), with `scale=1` half of it.
"""
from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import dln_warm_start


def _target_mean(logits, labels, scale, target="bce"):
  """A target averaged over the C rows of each sample, as the DLN averages."""
  num_classes = logits.shape[-1]
  p = tf.sigmoid(logits)
  onehot = tf.one_hot(labels, num_classes, dtype=logits.dtype)
  p_true = tf.reduce_sum(p * onehot, -1, keepdims=True)
  rows = dln_warm_start.target_loss(target, tf.broadcast_to(p_true, p.shape),
                                    p, scale)
  return tf.reduce_sum(rows * (1 - onehot)) / tf.size(
      onehot, out_type=logits.dtype)


def _logit_gradient(loss_fn, logits, labels):
  with tf.GradientTape() as tape:
    tape.watch(logits)
    loss = loss_fn(labels, logits)
  return tape.gradient(loss, logits).numpy()


def _cross_entropy(labels, logits):
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits))


class ScaleTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(num_classes=(2, 3, 10, 100),
                          target=dln_warm_start.TARGETS)
  def test_target_gradient_is_half_of_ce_at_zero_logits(self, num_classes,
                                                         target):
    logits = tf.zeros([4, num_classes], tf.float64)
    labels = tf.constant([0, 1, 0, 1])
    ce = _logit_gradient(_cross_entropy, logits, labels)
    for scale, factor in ((1.0, 0.5), (2.0, 1.0)):
      grad = _logit_gradient(
          lambda y, z, s=scale: _target_mean(z, y, s, target), logits, labels)
      self.assertAllClose(grad, factor * ce, rtol=1e-12, atol=1e-15)

  def test_pairwise_logistic_is_softplus_of_logit_differences(self):
    """(W2) = log(1 + exp(z_j - z_y)): unchanged when every logit shifts."""
    z_true = tf.constant([0.3, -1.0, 2.0], tf.float64)
    z_wrong = tf.constant([-0.5, 1.5, 2.5], tf.float64)
    for shift in (0.0, 1.7):
      loss = dln_warm_start.target_loss(
          "pairwise_logistic", tf.sigmoid(z_true + shift),
          tf.sigmoid(z_wrong + shift))
      self.assertAllClose(loss, tf.math.softplus(z_wrong - z_true),
                          rtol=1e-10)

  @parameterized.parameters("float32", "float64")
  def test_scaled_fit_has_ces_gradient_at_zero_logits(self, dtype):
    logits = tf.zeros([6, 10], dtype)
    labels = tf.constant([0, 1, 2, 3, 4, 5])
    ce = _logit_gradient(_cross_entropy, logits, labels)
    ratios = {}
    for scale in (1.0, 2.0):
      keras.utils.set_random_seed(0)
      dln = dln_lib.PairwiseDLN(dtype=dtype)
      fit = dln_warm_start.warm_start(dln, steps=800, scale=scale)
      self.assertLess(fit["warm_start_rmse"], 0.1)
      grad = _logit_gradient(dln, logits, labels)
      ratios[scale] = np.linalg.norm(grad) / np.linalg.norm(ce)
      cosine = np.sum(grad * ce) / (np.linalg.norm(grad) * np.linalg.norm(ce))
      self.assertGreater(cosine, 0.95)
    self.assertAllClose(ratios[2.0], 1.0, atol=0.15)
    self.assertAllClose(ratios[1.0], 0.5, atol=0.1)


if __name__ == "__main__":
  tf.test.main()
