"""Gradient test helpers: a compiled unroll, finite differences, a mixin."""
import numpy as np
import tensorflow as tf

from l2t_tf import hypergradient


def compiled_unroll(student, train_loss, validation_loss, batches, validation,
                    learning_rate, dln, mode="unrolled"):
  """() -> `hypergradient.Unroll` of `student` at its current weights.

  A `tf.function` of N SGD steps on `train_loss` over `batches` ([N, B, ...]
  pairs) and e_val = `validation_loss` on `validation`, differentiated with
  respect to `dln.trainable_variables`; re-reads every variable per call.
  """
  @hypergradient.function
  def unroll():
    return hypergradient.unroll(
        hypergradient.stateless_apply(student),
        [v.value for v in student.trainable_variables],
        [v.value for v in student.non_trainable_variables], train_loss,
        validation_loss, batches, validation, learning_rate,
        dln.trainable_variables, mode)
  return unroll


def directional_check(variables, value_fn, gradients, eps, seed=0):
  """(analytic, finite difference) of value_fn along a random direction.

  Args:
    variables: variables the gradients are taken with respect to.
    value_fn: () -> float, evaluated at the variables' current values.
    gradients: d value_fn / d variables, shaped like `variables`.
    eps: step of the central difference.
    seed: seed of the random direction.
  """
  rng = np.random.default_rng(seed)
  direction = [rng.normal(size=v.shape) for v in variables]
  original = [v.numpy() for v in variables]
  values = []
  for sign in (1.0, -1.0):
    for v, w, d in zip(variables, original, direction):
      v.assign(w + sign * eps * d)
    values.append(float(value_fn()))
  for v, w in zip(variables, original):
    v.assign(w)
  analytic = sum(float(np.sum(np.asarray(g) * d))
                 for g, d in zip(gradients, direction))
  return analytic, (values[0] - values[1]) / (2 * eps)


def validation_error_after_steps(student, dln, batches, val, learning_rate,
                                 validation_training=False):
  """Reference e_val: N eager SGD steps on the DLN, then CE on `val`.

  Every variable of the student (moving statistics too) is restored after.
  """
  weights = [v.numpy() for v in student.variables]
  for x, y in batches:
    with tf.GradientTape() as tape:
      loss = dln(y, student(x, training=True))
    grads = tape.gradient(loss, student.trainable_variables)
    for v, g in zip(student.trainable_variables, grads):
      v.assign_sub(learning_rate * g)
  error = float(hypergradient.sparse_cross_entropy(
      val[1], student(val[0], training=validation_training)))
  for v, w in zip(student.variables, weights):
    v.assign(w)
  return error


def finite_difference(fn, x, h=1e-6):
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
    numeric = finite_difference(lambda a: float(fn(tf.constant(a))), x)
    error = np.linalg.norm(grad - numeric) / max(np.linalg.norm(numeric),
                                                 1e-12)
    self.assertLess(error, rtol, msg=f"tape {grad} vs FD {numeric}")
