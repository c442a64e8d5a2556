"""Exactness of the unrolled hypergradient (paper Eq. 4-6).

Float64 students without BatchNorm are checked against central finite
differences of the validation error after N SGD steps (a directional
derivative along a random direction, so every DLN coordinate counts); both
modes must agree with each other, also with BatchNorm and in float32.
"""
from absl.testing import parameterized
import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import config
from l2t_tf import dln as dln_lib
from l2t_tf import hypergradient
from l2t_tf.students import batch_norm as batch_norm_lib
import gradcheck

LR = 0.5


def _mlp(dtype, batch_norm=False):
  layers = [keras.Input((6,), dtype=dtype),
            keras.layers.Dense(8, activation="tanh", dtype=dtype)]
  if batch_norm:
    layers.append(batch_norm_lib.BatchNormalization(dtype=dtype))
  layers.append(keras.layers.Dense(4, dtype=dtype))
  return keras.Sequential(layers)


def _data(dtype, n=3, seed=0):
  rng = np.random.default_rng(seed)
  batches = [(rng.normal(size=(5, 6)).astype(dtype),
              rng.integers(0, 4, 5).astype(np.int32)) for _ in range(n)]
  val = (rng.normal(size=(7, 6)).astype(dtype),
         rng.integers(0, 4, 7).astype(np.int32))
  return batches, val


def _validation_error_after_steps(student, dln, batches, val,
                                  validation_training=False):
  return gradcheck.validation_error_after_steps(
      student, dln, batches, val, LR, validation_training)


class HypergradientTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    keras.utils.set_random_seed(1)

  @parameterized.parameters("unrolled", "reverse")
  def test_matches_finite_differences_float64(self, mode):
    student = _mlp("float64")
    dln = dln_lib.PairwiseDLN(hidden_units=(6, 6), dtype="float64")
    batches, val = _data(np.float64)
    grads, error = hypergradient.unrolled_hypergradient(
        student, dln, batches, val, LR, mode=mode)
    self.assertAllClose(
        error, _validation_error_after_steps(student, dln, batches, val),
        rtol=1e-10)
    analytic, finite_difference = gradcheck.directional_check(
        dln.trainable_variables,
        lambda: _validation_error_after_steps(student, dln, batches, val),
        grads, eps=1e-5, seed=2)
    self.assertLess(abs(analytic - finite_difference),
                    1e-6 * abs(finite_difference))

  @parameterized.parameters("unrolled", "reverse")
  def test_validation_in_training_mode_matches_finite_differences(self, mode):
    """BatchNorm student, e_val on the validation batch's own statistics.

    The release's mode (issue 12): the reference runs every forward pass in
    training mode, so the carried moving statistics play no part.
    """
    student = _mlp("float64", batch_norm=True)
    dln = dln_lib.PairwiseDLN(hidden_units=(6, 6), dtype="float64")
    batches, val = _data(np.float64)
    reference = lambda: _validation_error_after_steps(
        student, dln, batches, val, validation_training=True)
    grads, error = hypergradient.unrolled_hypergradient(
        student, dln, batches, val, LR, mode=mode, validation_training=True)
    self.assertAllClose(error, reference(), rtol=1e-10)
    self.assertNotAllClose(error, _validation_error_after_steps(
        student, dln, batches, val), rtol=1e-3)  # The mode matters here.
    analytic, finite_difference = gradcheck.directional_check(
        dln.trainable_variables, reference, grads, eps=1e-5, seed=3)
    self.assertLess(abs(analytic - finite_difference),
                    1e-6 * abs(finite_difference))

  @parameterized.product(dtype=["float32", "float64"],
                         batch_norm=[False, True])
  def test_modes_agree(self, dtype, batch_norm):
    student = _mlp(dtype, batch_norm)
    dln = dln_lib.PairwiseDLN(hidden_units=(6, 6), dtype=dtype)
    batches, val = _data(np.dtype(dtype), n=4)
    unrolled, e1 = hypergradient.unrolled_hypergradient(
        student, dln, batches, val, LR, mode="unrolled")
    reverse, e2 = hypergradient.unrolled_hypergradient(
        student, dln, batches, val, LR, mode="reverse")
    tol = 1e-4 if dtype == "float32" else 1e-10
    self.assertAllClose(e1, e2, rtol=tol)
    for a, b in zip(unrolled, reverse):
      self.assertEqual(a.dtype, tf.as_dtype(dtype))
      self.assertAllClose(a, b, rtol=tol, atol=tol * 1e-2)
    self.assertGreater(sum(float(tf.norm(g)) for g in unrolled), 0.0)

  def test_student_weights_unchanged(self):
    student = _mlp("float32", batch_norm=True)
    dln = dln_lib.PairwiseDLN(hidden_units=(6,))
    before = [v.numpy() for v in student.variables]
    batches, val = _data(np.float32)
    for mode in hypergradient.MODES:
      hypergradient.unrolled_hypergradient(student, dln, batches, val, LR,
                                           mode=mode)
    for v, w in zip(student.variables, before):
      self.assertAllEqual(v.numpy(), w)

  def test_one_step_closed_form(self):
    """N = 1, linear student, DLN = w * sigmoid-feature: de/dw by hand."""
    dtype = "float64"
    student = keras.Sequential([keras.Input((2,), dtype=dtype),
                                keras.layers.Dense(2, use_bias=False,
                                                   dtype=dtype)])
    student.layers[0].kernel.assign(np.eye(2))
    dln = dln_lib.PairwiseDLN(hidden_units=(), dtype=dtype)
    dln.kernels[0].assign(np.array([[0.7], [-1.3], [0.0], [0.0]]))
    x, y = np.array([[1.0, 2.0]]), np.array([0], np.int32)
    xv, yv = np.array([[0.5, -1.0]]), np.array([1], np.int32)
    grads, _ = hypergradient.unrolled_hypergradient(
        student, dln, [(x, y)], (xv, yv), LR)
    # W1 = I - lr * dL/dW with L = (a s(z0) + b s(z1)) / 2, z = x W, so
    # dL/dW[:, 0] = a s'(z0) x / 2 and dL/dW[:, 1] = b s'(z1) x / 2.
    def error(a, b):
      z = x @ np.eye(2)
      s = 1 / (1 + np.exp(-z))
      ds = s * (1 - s)
      w1 = np.eye(2) - LR * np.stack([a * ds[0, 0] * x[0],
                                      b * ds[0, 1] * x[0]], axis=1) / 2
      zv = xv @ w1
      return float(np.log(np.sum(np.exp(zv))) - zv[0, 1])
    h = 1e-6
    da = (error(0.7 + h, -1.3) - error(0.7 - h, -1.3)) / (2 * h)
    db = (error(0.7, -1.3 + h) - error(0.7, -1.3 - h)) / (2 * h)
    self.assertAllClose(grads[0][:2, 0], [da, db], rtol=1e-7)
    self.assertAllClose(grads[0][2:, 0], [0.0, 0.0])

  def test_bad_mode(self):
    student, dln = _mlp("float32"), dln_lib.PairwiseDLN(hidden_units=(3,))
    batches, val = _data(np.float32, n=1)
    with self.assertRaisesRegex(ValueError, "mode"):
      hypergradient.unrolled_hypergradient(student, dln, batches, val, LR,
                                           mode="forward")


def _xla_must_compile(fn):
  """The `_XlaMustCompile` attribute of fn's graph (None: not set)."""
  concrete = fn.get_concrete_function(tf.TensorSpec([2], tf.float32))
  attr = concrete.function_def.attr
  return attr["_XlaMustCompile"].b if "_XlaMustCompile" in attr else None


class LoopJitCompileTest(tf.test.TestCase):
  """`loop_jit_compile.enabled` is the default `jit_compile` of `function`."""

  def setUp(self):
    super().setUp()
    gin.clear_config()
    self.addCleanup(gin.clear_config)

  def test_default_is_tf_functions(self):
    self.assertIsNone(hypergradient.loop_jit_compile())
    made = hypergradient.function(lambda x: 2.0 * x)
    self.assertIsNone(made._jit_compile)  # pylint: disable=protected-access
    self.assertIsNone(_xla_must_compile(made))
    self.assertIsNone(_xla_must_compile(tf.function(lambda x: 2.0 * x)))

  def test_gin_binding_reaches_the_tf_function(self):
    config.parse(gin_bindings=["loop_jit_compile.enabled = True"])
    made = hypergradient.function(lambda x: 2.0 * x)
    decorated = hypergradient.function()(lambda x: 3.0 * x)
    for fn in (made, decorated):
      self.assertTrue(fn._jit_compile)  # pylint: disable=protected-access
      self.assertTrue(_xla_must_compile(fn))
    self.assertAllEqual(made(tf.constant([1.0, 2.0])), [2.0, 4.0])

  def test_explicit_argument_wins(self):
    gin.bind_parameter("loop_jit_compile.enabled", True)
    made = hypergradient.function(lambda x: 2.0 * x, jit_compile=False)
    self.assertFalse(_xla_must_compile(made))


if __name__ == "__main__":
  tf.test.main()
