"""The DLN updaters (paper Eq. 3 and 8): the LSTM teacher's, an optimizer."""
import math

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln_updaters
from l2t_tf import teacher as teacher_lib


class TeacherUpdaterTest(tf.test.TestCase):

  def _setup(self):
    keras.utils.set_random_seed(0)
    dln_vars = [tf.Variable(np.ones((2, 3))), tf.Variable(np.zeros(4))]
    updater = dln_updaters.TeacherUpdater(output_scale=0.1)
    updater.build(dln_vars)
    grads = [tf.constant(np.linspace(-1, 1, 6).reshape(2, 3)),
             tf.constant([0.5, -2.0, 1e-3, 0.0], tf.float64)]
    return dln_vars, updater, grads

  def test_apply_moves_dln_and_carries_state(self):
    dln_vars, updater, grads = self._setup()
    before = [v.numpy() for v in dln_vars]
    (gradient, old_state), metrics = updater.apply(dln_vars, grads)
    step, _ = updater.teacher(gradient, old_state)
    moved = np.concatenate([(v.numpy() - b).ravel()
                            for v, b in zip(dln_vars, before)])
    self.assertAllClose(moved, step)  # phi_1 = phi_0 + T(g) (Eq. 3).
    self.assertAllClose(metrics["teacher_output_norm"], np.linalg.norm(moved))
    self.assertAllEqual(old_state[0][0], np.zeros((10, 64)))
    self.assertGreater(float(tf.norm(updater.state[0][0])), 0.0)

  def test_learn_is_the_vjp_through_the_teacher(self):
    """Eq. 8: de2/dvarphi = (de2/dphi_1)^T dT(g)/dvarphi, checked by FD."""
    dln_vars, updater, grads = self._setup()
    (gradient, old_state), _ = updater.apply(dln_vars, grads)
    cotangent = [tf.constant(np.arange(6.0).reshape(2, 3) - 2.0),
                 tf.constant([1.0, -1.0, 0.5, 2.0], tf.float64)]
    flat_cot = dln_updaters.flatten(cotangent)
    kernel = updater.teacher.cells[0].kernel
    with tf.GradientTape() as tape:
      step, _ = updater.teacher(gradient, old_state)
      objective = tf.reduce_sum(step * flat_cot)
    full = tape.gradient(objective, kernel).numpy()
    idx = np.unravel_index(np.argmax(np.abs(full)), full.shape)
    analytic = full[idx]
    original = kernel.numpy()
    values = []
    for sign in (1.0, -1.0):
      bumped = original.copy()
      bumped[idx] += sign * 1e-6
      kernel.assign(bumped)
      step, _ = updater.teacher(gradient, old_state)
      values.append(float(tf.reduce_sum(step * flat_cot)))
    kernel.assign(original)
    self.assertAllClose(analytic, (values[0] - values[1]) / 2e-6, rtol=1e-6)
    # learn() applies exactly that gradient with Adam, whose first step is
    # lr * g / (|g| + epsilon / sqrt(1 - beta_2)) in Keras' formulation.
    metrics = updater.learn((gradient, old_state), cotangent)
    self.assertGreater(float(metrics["teacher_gradient_norm"]), 0.0)
    self.assertAllClose(original[idx] - kernel.numpy()[idx],
                        1e-3 * analytic / (abs(analytic) + 1e-7 / math.sqrt(
                            1 - 0.999)), rtol=1e-4)

  def test_teacher_is_built_in_the_dtype_of_the_dln(self):
    for dtype in ("float32", "float64"):
      updater = dln_updaters.TeacherUpdater()
      self.assertIsNone(updater.teacher)  # Made in build.
      updater.build([tf.Variable(tf.zeros([3], dtype))])
      self.assertEqual(updater.teacher.compute_dtype, dtype)
      self.assertEqual({w.dtype for w in updater.teacher.trainable_variables},
                       {dtype})
      self.assertEqual(updater.state[0][0].dtype, dtype)

  def test_build_draws_what_the_teacher_drew_at_construction(self):
    """Made at the start of build: the same point in Keras' seed sequence."""
    keras.utils.set_random_seed(0)
    expected = [w.numpy() for w in teacher_lib.LSTMTeacher().variables]
    keras.utils.set_random_seed(0)
    updater = dln_updaters.TeacherUpdater()
    updater.build([tf.Variable(tf.zeros([3]))])
    for want, got in zip(expected, updater.teacher.variables, strict=True):
      self.assertAllEqual(want, got)


class OptimizerUpdaterTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("sgd", "adam", "rmsprop")
  def test_descends(self, name):
    var = tf.Variable([1.0, -2.0])
    updater = dln_updaters.OptimizerUpdater(name, learning_rate=0.1)
    updater.build([var])
    updater.apply([var], [tf.constant([1.0, -1.0])])
    self.assertAllLess(var.numpy() * [1, -1] - [1.0, 2.0], 0.0)
    self.assertNotIsInstance(updater, dln_updaters.TeachingUpdater)

  def test_unknown_optimizer(self):
    with self.assertRaisesRegex(ValueError, "optimizer must be one of"):
      dln_updaters.OptimizerUpdater("adagrad")


if __name__ == "__main__":
  tf.test.main()
