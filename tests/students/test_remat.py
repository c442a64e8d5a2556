"""Rematerialisation keeps values, gradients and Hessian-vector products."""
from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import hypergradient
from l2t_tf.students import pspnet
from l2t_tf.students import remat
from l2t_tf.tasks import segmentation

import gradcheck

TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


def _gradient_and_hvp(model, x, direction):
  """(outputs, dL/dtheta, H direction, new BN state) of a smooth L."""
  apply = hypergradient.stateless_apply(model)
  state = [v.value for v in model.non_trainable_variables]

  @tf.function
  def run(theta):
    with tf.GradientTape() as outer:
      outer.watch(theta)
      with tf.GradientTape() as inner:
        inner.watch(theta)
        outputs, new_state = apply(theta, state, x, True)
        loss = tf.reduce_sum(tf.sin(outputs))
      grads = inner.gradient(loss, theta)
    return outputs, grads, outer.gradient(grads, theta,
                                          output_gradients=direction), new_state
  return run([v.value for v in model.trainable_variables])


class RematerializedTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("float32", "float64")
  def test_bottleneck_gradient_and_hvp_unchanged(self, dtype):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 16), dtype=dtype)
    block = keras.Model(inputs, pspnet._bottleneck(inputs, 4, 1, 2, "b",
                                                   dtype))
    plain_in = keras.Input((8, 8, 16), dtype=dtype)
    plain = keras.Model(plain_in, block(plain_in))
    remat_in = keras.Input((8, 8, 16), dtype=dtype)
    wrapped = keras.Model(remat_in, remat.Rematerialized(
        block, dtype=dtype)(remat_in))
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 8, 8, 16)), dtype)
    direction = [tf.random.normal(v.shape, dtype=dtype)
                 for v in plain.trainable_variables]
    expected = _gradient_and_hvp(plain, x, direction)
    actual = _gradient_and_hvp(wrapped, x, direction)
    scale = float(tf.linalg.global_norm(expected[2]))
    self.assertGreater(scale, 1.0)  # A non-trivial second derivative.
    tol = TOLERANCE[dtype]
    for want, got in zip(tf.nest.flatten(expected), tf.nest.flatten(actual)):
      self.assertAllClose(want, got, rtol=tol, atol=tol * scale)

  def test_gradient_function_recomputes_instead_of_reusing(self):
    # A checkpointed op's gradient runs `fn` again (forward, then the
    # recompute in the gradient), and that gradient is differentiable.
    calls = []

    def fn(a):
      calls.append(1)
      return [tf.sin(a) * a]
    op = remat.checkpointed(fn)
    a = tf.constant([0.3, -1.2], tf.float64)
    with tf.GradientTape() as outer:
      outer.watch(a)
      with tf.GradientTape() as inner:
        inner.watch(a)
        y = op(a)[0]
      g = inner.gradient(y, a)
    h = outer.gradient(g, a)
    self.assertLen(calls, 2)
    self.assertAllClose(g, np.cos(a) * a + np.sin(a))
    self.assertAllClose(h, -np.sin(a) * a + 2 * np.cos(a))


class RematPSPNetTest(tf.test.TestCase):

  def test_reverse_mode_hypergradient_unchanged(self):
    keras.utils.set_random_seed(0)
    make = lambda r: pspnet.pspnet(input_shape=(16, 16, 3), depth=14, width=4,
                                   dropout=0.0, rematerialize=r,
                                   dtype="float64")
    plain, wrapped = make(False), make(True)
    self.assertIsNotNone(pspnet._layer(wrapped, "conv2_block1_1_conv"))
    by_path = {v.path: v for v in wrapped.variables}
    for v in plain.variables:  # Same weights (dropout seeds aside).
      if v.path in by_path:
        by_path[v.path].assign(v)
    task = segmentation.SegmentationTask(crop_size=16, dtype="float64")
    dln = dln_lib.classification_dln(ignore_label=255, hidden_units=(8, 8),
                                     dtype="float64")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 21, (2, 2, 16, 16))
    labels[rng.random(labels.shape) < 0.1] = 255
    batches = (tf.constant(rng.normal(size=(2, 2, 16, 16, 3))),
               tf.constant(labels, tf.int32))
    validation = (batches[0][0], batches[1][0])

    def hypergradient_of(model):
      result = gradcheck.compiled_unroll(
          model, lambda y, out: task.student_loss(dln, y, out),
          task.validation_error, batches, validation, 0.1, dln, "reverse")()
      return result.gradients, result.validation_error
    results = [hypergradient_of(model) for model in (plain, wrapped)]
    (want, want_error), (got, got_error) = results
    self.assertGreater(float(tf.linalg.global_norm(want)), 1e-4)
    self.assertAllClose(want_error, got_error, rtol=1e-10)
    self.assertAllClose(want, got, rtol=1e-8, atol=1e-12)


if __name__ == "__main__":
  tf.test.main()
