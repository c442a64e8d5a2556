"""L-Softmax (related_methods/large_margin_softmax.py): loss, head, schedule."""
import math

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import hypergradient
from l2t_tf.related_methods import large_margin_softmax as lsm
from l2t_tf.tasks import classification
import gradcheck

DTYPES = (("float32", tf.float32), ("float64", tf.float64))


class LargeMarginSoftmaxTest(gradcheck.GradientCheck, parameterized.TestCase):

  @parameterized.named_parameters(*DTYPES)
  def test_psi_matches_angle_form(self, dtype):
    theta = np.linspace(0., math.pi, 37)
    for m in (1, 2, 3, 4):
      k = np.minimum(np.floor(theta * m / math.pi), m - 1)
      expected = (-1.)**k * np.cos(m * theta) - 2. * k
      got = lsm.psi(tf.constant(np.cos(theta), dtype), m)
      self.assertAllClose(got, expected, atol=1e-5)
      self.assertTrue(np.all(np.diff(got.numpy()) <= 1e-6))  # decreasing

  @parameterized.named_parameters(*DTYPES)
  def test_hand_computed_example(self, dtype):
    # ||x|| = 5; W_0 = (1, 0), W_1 = (0, 2): z = (3, 8), cos(theta_0) = 0.6,
    # m = 2: psi = 2 * 0.36 - 1 = -0.28, f_0 = 5 * -0.28 = -1.4 at lambda 0.
    x = tf.constant([[3., 4.]], dtype)
    w = tf.constant([[1., 0.], [0., 2.]], dtype)
    logits, margin = lsm.margin_logits(x, w, 2, 0.)
    self.assertAllClose(logits, [[3., 8.]])
    self.assertAllClose(margin[0, 0], -1.4, rtol=1e-6)
    outputs = {"logits": logits, "margin_logits": margin}
    loss = lsm.large_margin_softmax_loss(tf.constant([0]), outputs)
    self.assertAllClose(loss, math.log1p(math.exp(9.4)), rtol=1e-6)
    _, annealed = lsm.margin_logits(x, w, 2, 1.)
    self.assertAllClose(annealed[0, 0], (3. - 1.4) / 2., rtol=1e-6)

  @parameterized.named_parameters(*DTYPES)
  def test_margin_one_and_lambda_limit_are_softmax(self, dtype):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(5, 4)), dtype)
    w = tf.constant(rng.normal(size=(4, 3)), dtype)
    y = tf.constant([0, 1, 2, 1, 0])
    for m, lam in ((1, 0.), (1, 5.), (4, 1e9)):
      logits, margin = lsm.margin_logits(x, w, m, lam)
      loss = lsm.large_margin_softmax_loss(
          y, {"logits": logits, "margin_logits": margin})
      self.assertAllClose(loss, hypergradient.sparse_cross_entropy(y, logits),
                          rtol=1e-5)
    _, margin = lsm.margin_logits(x, w, 4, 0.)
    self.assertNotAllClose(margin, tf.matmul(x, w))

  @parameterized.named_parameters(*DTYPES)
  def test_lambda_schedule_and_step(self, dtype):
    self.assertAllClose(lsm.lambda_schedule(10., 1000., 0.1, 2., 0.), 250.)
    self.assertAllClose(lsm.lambda_schedule(1e9, 1000., 0.1, 2., 3.), 3.)
    head = lsm.LargeMarginHead(3, margin=2, base=1000., gamma=0.1, power=2.,
                               dtype=dtype)
    features = tf.ones([2, 4], dtype)
    head(features)
    self.assertAllClose(head.step, 0.)
    for _ in range(10):
      out = head(features, training=True)
    self.assertAllClose(head.step, 10.)
    self.assertAllClose(head.current_lambda(), 250.)
    logits, margin = lsm.margin_logits(features, head.kernel, 2, 250.)
    self.assertAllClose(out["margin_logits"], margin)
    self.assertAllClose(out["logits"], logits)

  def test_gradients_float64(self):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(3, 4)), rng.normal(size=(4, 3))
    y = tf.constant([0, 2, 1])

    def loss(features, kernel, lam):
      logits, margin = lsm.margin_logits(features, kernel, 4, lam)
      return lsm.large_margin_softmax_loss(
          y, {"logits": logits, "margin_logits": margin})
    for lam in (0., 2.):
      self.assert_gradient_matches(
          lambda t, lam=lam: loss(t, tf.constant(w), lam), x)
      self.assert_gradient_matches(
          lambda t, lam=lam: loss(tf.constant(x), t, lam), w)

  @parameterized.named_parameters(*DTYPES)
  def test_wrapped_student_in_unrolled_engine(self, dtype):
    inputs = keras.Input((4,), dtype=dtype)
    hidden = keras.layers.Dense(6, activation="tanh", dtype=dtype)(inputs)
    plain = keras.Model(inputs, keras.layers.Dense(3, dtype=dtype)(hidden))
    plain.layers[-1].bias.assign([0.5, -0.5, 0.])
    model = lsm.wrap_student(plain, margin=2, gamma=0.1, power=2.)
    x = tf.constant(np.random.default_rng(2).normal(size=(5, 4)), dtype)
    y = tf.constant([0, 1, 2, 0, 1])
    self.assertAllClose(model(x), plain(x) - plain.layers[-1].bias)
    self.assertEqual(model.output_shape, (None, 3))
    classification.ClassificationTask().check_labels(model, y.numpy())
    clone = keras.models.clone_model(model)
    self.assertEqual(clone(x).shape, (5, 3))
    theta = [v.value for v in model.trainable_variables]
    state = [v.value for v in model.non_trainable_variables]
    steps = tf.function(lambda b: hypergradient.sgd_steps(
        hypergradient.stateless_apply(model), theta, state,
        lsm.large_margin_softmax_loss, b, 0.1))
    new_theta, new_state, loss = steps((tf.stack([x] * 3), tf.stack([y] * 3)))
    self.assertAllClose(new_state[-1], 3.)  # lambda step carried like BN stats
    self.assertTrue(np.isfinite(loss.numpy()))
    self.assertNotAllClose(new_theta[-1], theta[-1])

  def test_plain_logits_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "large_margin_student"):
      lsm.large_margin_softmax_loss(tf.constant([0]), tf.zeros([1, 2]))


if __name__ == "__main__":
  tf.test.main()
