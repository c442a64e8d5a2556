"""Tests of the Table 1 baseline losses (l2t_tf/related_methods)."""
import math

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import config
from l2t_tf import hypergradient
from l2t_tf.related_methods import large_margin_softmax as lsm
from l2t_tf.related_methods import robust_loss
from l2t_tf.related_methods import smooth_01
from l2t_tf.related_methods import stochastic_loss
from l2t_tf.tasks import classification

DTYPES = (("float32", tf.float32), ("float64", tf.float64))
K1_OF_1 = 0.6019072301972346  # modified Bessel function K_1(1)


def _sigmoid(t):
  return 1. / (1. + math.exp(-t))


def _finite_difference(fn, x, h=1e-6):
  """Central differences of scalar fn(np.ndarray float64) at x."""
  grad = np.zeros_like(x)
  for i in np.ndindex(x.shape):
    step = np.zeros_like(x)
    step[i] = h
    grad[i] = (fn(x + step) - fn(x - step)) / (2. * h)
  return grad


class GradientCheck(tf.test.TestCase):
  """Mixin: tape gradient vs central differences, float64."""

  def assert_gradient_matches(self, fn, x, rtol=1e-6):
    x = np.asarray(x, np.float64)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
      tape.watch(xt)
      value = fn(xt)
    grad = tape.gradient(value, xt).numpy()
    numeric = _finite_difference(lambda a: float(fn(tf.constant(a))), x)
    error = np.linalg.norm(grad - numeric) / max(np.linalg.norm(numeric),
                                                 1e-12)
    self.assertLess(error, rtol, msg=f"tape {grad} vs FD {numeric}")


class Smooth01Test(GradientCheck, parameterized.TestCase):

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


class RobustLossTest(GradientCheck, parameterized.TestCase):

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


class LargeMarginSoftmaxTest(GradientCheck, parameterized.TestCase):

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


class StochasticLossTest(GradientCheck, parameterized.TestCase):

  @parameterized.named_parameters(*DTYPES)
  def test_base_losses_closed_form(self, dtype):
    y = tf.constant([0])
    z = tf.constant([[math.log(2.), 0.]], dtype)  # p = (2/3, 1/3)
    p_y = 2. / 3.
    self.assertAllClose(stochastic_loss.cross_entropy(y, z), [-math.log(p_y)])
    self.assertAllClose(stochastic_loss.squared_error(y, z), [2. / 9.])
    self.assertAllClose(stochastic_loss.hinge(y, z), [1. - math.log(2.)])
    self.assertAllClose(stochastic_loss.hinge(y, 2. * z), [0.])
    self.assertAllClose(stochastic_loss.focal(y, z),
                        [-(1. / 9.) * math.log(p_y)])

  @parameterized.named_parameters(*DTYPES)
  def test_selection_with_given_noise(self, dtype):
    layer = stochastic_loss.StochasticLoss(dtype=dtype)
    y = tf.constant([0, 1])
    z = tf.constant([[1., 2., 0.], [0., 1., 3.]], dtype)
    gumbel = tf.constant([[1., 0., 0., 0.], [0., 0., 2., 0.]], dtype)
    value = layer(y, z, gumbel=gumbel)
    expected = 0.5 * (tf.reduce_mean(stochastic_loss.cross_entropy(y, z))
                      + tf.reduce_mean(stochastic_loss.hinge(y, z)))
    self.assertAllClose(value, expected)
    layer.selection_logits.assign([[0., 0., 0., 1.], [0., 0., 0., 1.]])
    self.assertAllClose(layer(y, z, training=False),
                        tf.reduce_mean(stochastic_loss.focal(y, z)))

  def test_noise_is_seeded(self):
    y, z = tf.constant([0, 1]), tf.constant([[1., 2., 0.], [0., 1., 3.]])
    first = [stochastic_loss.StochasticLoss(seed=3)(y, z) for _ in range(2)]
    self.assertAllClose(first[0], first[1])
    layer = stochastic_loss.StochasticLoss(seed=3, num_selections=8)
    self.assertAllClose(layer(y, z), layer(y, z))  # Same batch, same draw.
    batches = [tf.constant([a, b]) for a in range(3) for b in range(3)]
    draws = {float(layer(batch, z)) for batch in batches}  # Fresh per batch.
    self.assertGreater(len(draws), 3)

  def test_gradients_float64(self):
    y = tf.constant([0, 2])
    z = np.array([[0.3, -0.2, 0.1], [0.5, 0.4, -1.]])
    v = np.array([[0.2, -0.1, 0.4, 0.], [0.3, 0.1, -0.2, 0.5]])
    gumbel = tf.constant([[0.1, 0.5, -0.3, 0.2], [1., -1., 0.3, 0.]],
                         tf.float64)
    names = tuple(stochastic_loss.BASE_LOSSES)

    def loss(logits, selection, hard):
      weights = stochastic_loss.selection_weights(selection, gumbel, 0.7, hard)
      return stochastic_loss.stochastic_loss(y, logits, weights, names)
    self.assert_gradient_matches(lambda t: loss(t, tf.constant(v), True), z)
    self.assert_gradient_matches(lambda t: loss(tf.constant(z), t, False), v)
    # Straight-through: the hard selection's gradient is the soft one's.
    grads = []
    for hard in (True, False):
      vt = tf.constant(v)
      with tf.GradientTape() as tape:
        tape.watch(vt)
        value = loss(tf.constant(z), vt, hard)
      grads.append(tape.gradient(value, vt))
    self.assertAllClose(grads[0], grads[1])


class GinTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("smooth_01", ["ClassificationTask.fixed_loss = @smooth_01_loss",
                     "smooth_01_loss.sharpness = 2.0"]),
      ("robust_fixed", ["ClassificationTask.fixed_loss = "
                        "@general_robust_loss"]),
      ("robust_adaptive", ["ClassificationTask.fixed_loss = "
                           "@adaptive_robust_loss()",
                           "adaptive_robust_loss.per_class = False"]),
      ("slf", ["ClassificationTask.fixed_loss = "
               "@stochastic_loss_function()",
               "stochastic_loss_function.seed = 0"]),
      ("large_margin", ["ClassificationTask.fixed_loss = "
                        "@large_margin_softmax_loss",
                        "ClassificationTask.student = @large_margin_student",
                        "large_margin_student.margin = 2"]))
  def test_binding_into_classification_task(self, bindings):
    config.parse(gin_bindings=bindings)
    try:
      task = classification.ClassificationTask(dataset="digits")
      student = task.build_student()
      x = tf.random.stateless_normal([3, 8, 8, 1], seed=[1, 2])
      y = tf.constant([0, 5, 9])
      loss = task.fixed_loss(y, student(x, training=True))
      self.assertEqual(loss.shape, ())
      self.assertTrue(np.isfinite(loss.numpy()))
      self.assertEqual(student(x).shape, (3, 10))
    finally:
      config.parse()


if __name__ == "__main__":
  tf.test.main()
