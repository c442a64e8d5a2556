"""Barron's robust loss (related_methods/robust_loss.py): rho, fixed, ARLF."""
import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from l2t_tf.related_methods import robust_loss
import gradcheck

DTYPES = (("float32", tf.float32), ("float64", tf.float64))
K1_OF_1 = 0.6019072301972346  # modified Bessel function K_1(1)


class RobustLossTest(gradcheck.GradientCheck, parameterized.TestCase):

  @parameterized.named_parameters(*DTYPES)
  def test_rho_closed_forms(self, dtype):
    x = np.array([0., 0.5, -1., 3.])
    c = 0.7
    s = (x / c)**2
    cases = {2.: 0.5 * s, 0.: np.log1p(0.5 * s), 1.: np.sqrt(s + 1.) - 1.,
             -2.: 2. * s / (s + 4.), -np.inf: -np.expm1(-0.5 * s),
             np.inf: np.expm1(0.5 * s)}
    for alpha, expected in cases.items():
      got = robust_loss.rho(tf.constant(x, dtype), alpha, c)
      self.assertEqual(got.dtype, dtype)
      self.assertAllClose(got, expected, rtol=1e-6, atol=1e-7, msg=alpha)

  def test_limits_float64(self):
    x = tf.constant([0., 0.5, -1., 3.], tf.float64)
    rho = lambda a: robust_loss.rho(x, tf.constant(a, tf.float64), 0.7)
    self.assertAllClose(rho(1e-7), rho(0.), rtol=1e-6)
    self.assertAllClose(rho(2. - 1e-7), rho(2.), rtol=1e-6)
    self.assertAllClose(rho(2. + 1e-7), rho(2.), rtol=1e-6)
    self.assertAllClose(rho(-1e7), rho(-np.inf), rtol=1e-6)

  @parameterized.named_parameters(*DTYPES)
  def test_log_partition_closed_forms(self, dtype):
    alpha = tf.constant([0., 1., 2.], dtype)
    expected = [math.log(math.pi * math.sqrt(2.)),
                math.log(2. * math.e * K1_OF_1), 0.5 * math.log(2. * math.pi)]
    self.assertAllClose(robust_loss.log_partition(alpha), expected,
                        rtol=1e-6)

  def test_density_integrates_to_one(self):
    x = np.linspace(-400., 400., 400001)
    for alpha, scale in ((1.5, 0.3), (1., 2.)):
      nll = robust_loss.nll(tf.constant(x), alpha, scale).numpy()
      self.assertAllClose(np.trapezoid(np.exp(-nll), x), 1., rtol=1e-5)

  @parameterized.named_parameters(*DTYPES)
  def test_adaptive_loss_at_init(self, dtype):
    loss = robust_loss.AdaptiveRobustLoss(dtype=dtype)
    value = loss(tf.constant([0]), tf.zeros([1, 2], dtype))
    self.assertAllClose(loss.alpha(), [1., 1.])
    self.assertAllClose(loss.scale(), [1., 1.])
    per_class = math.sqrt(1.25) - 1. + math.log(2. * math.e * K1_OF_1)
    self.assertAllClose(value, 2. * per_class, rtol=1e-6)
    self.assertLen(loss.trainable_variables, 2)

  def test_adaptive_loss_is_gin_factory_with_bounds(self):
    loss = robust_loss.adaptive_robust_loss(per_class=False, alpha_init=0.5,
                                            scale_init=0.2, dtype="float64")
    loss(tf.constant([1, 0]), tf.zeros([2, 3], tf.float64))
    self.assertAllClose(loss.alpha(), 0.5)
    self.assertAllClose(loss.scale(), 0.2)
    self.assertEqual(loss.latent_alpha.shape, ())

  def test_gradients_float64(self):
    y = tf.constant([0, 2])
    z = np.array([[0.3, -0.2, 0.1], [0.5, 0.4, -1.]])
    loss = robust_loss.AdaptiveRobustLoss(dtype="float64")
    loss(y, tf.constant(z))
    loss.latent_alpha.assign([0.3, -0.5, 1.])
    loss.latent_scale.assign([0.2, -0.4, 0.1])
    self.assert_gradient_matches(lambda t: loss(y, t), z)
    params = np.array([[0.3, -0.5, 1.], [0.2, -0.4, 0.1]])
    self.assert_gradient_matches(
        lambda p: loss.stateless_call([p[0], p[1]], [], y, tf.constant(z))[0],
        params)
    self.assert_gradient_matches(
        lambda a: tf.reduce_sum(robust_loss.nll(
            tf.constant([0.1, -0.3], tf.float64), a, 0.4)),
        np.array([0.05, 1.7]))


if __name__ == "__main__":
  tf.test.main()
