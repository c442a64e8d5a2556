"""The smooth 0-1 loss (related_methods/smooth_01.py, Nguyen & Sanner)."""
import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from l2t_tf.related_methods import smooth_01
import gradcheck

DTYPES = (("float32", tf.float32), ("float64", tf.float64))


def _sigmoid(t):
  return 1. / (1. + math.exp(-t))


class Smooth01Test(gradcheck.GradientCheck, parameterized.TestCase):

  @parameterized.named_parameters(*DTYPES)
  def test_closed_form(self, dtype):
    y = tf.constant([0, 1])
    z = tf.constant([[2., 1., 0.], [0., 1., 3.]], dtype)  # margins 1, -2
    self.assertAllClose(smooth_01.multiclass_margin(y, z), [1., -2.])
    for k in (1., 2.):
      expected = (_sigmoid(-k * 1.) + _sigmoid(k * 2.)) / 2.
      loss = smooth_01.smooth_01_loss(y, z, sharpness=k)
      self.assertEqual(loss.dtype, dtype)
      self.assertAllClose(loss, expected, rtol=1e-6)

  @parameterized.named_parameters(*DTYPES)
  def test_large_sharpness_is_zero_one_loss(self, dtype):
    y = tf.constant([0, 1, 2, 2])
    z = tf.constant([[2., 1., 0.], [0., 1., 3.], [1., 0., 1.5], [0., 4., 1.]],
                    dtype)
    self.assertAllClose(smooth_01.smooth_01_loss(y, z, sharpness=1e3), 0.5)

  def test_gradient_float64(self):
    y = tf.constant([0, 1, 2])
    z = np.array([[0.3, -0.2, 0.1], [0.5, 0.4, -1.], [0.2, 0.7, 0.9]])
    self.assert_gradient_matches(
        lambda t: smooth_01.smooth_01_loss(y, t, sharpness=2.), z)


if __name__ == "__main__":
  tf.test.main()
