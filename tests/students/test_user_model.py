"""One's own Keras model as a student (`students/user_model.py`).

The point of `make_exact`: a subclassed model built with Keras' own
BatchNormalization is taught with the exact hypergradient (float64 finite
differences agree), where Keras' layer alone is measurably off.
"""
from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import errors
from l2t_tf import hypergradient
from l2t_tf.students import batch_norm
from l2t_tf.students import user_model
import gradcheck

LR = 0.5


class SubclassedBNNet(keras.Model):
  """A subclassed MLP with Keras' BatchNormalization (nested in a block)."""

  def __init__(self, units=6, classes=3, dtype=None, **kwargs):
    super().__init__(dtype=dtype, **kwargs)
    self.units, self.classes = units, classes
    self.block = keras.Sequential([
        keras.layers.Dense(units, use_bias=False, dtype=dtype),
        keras.layers.BatchNormalization(dtype=dtype),
        keras.layers.Activation("tanh", dtype=dtype)])
    self.head = keras.layers.Dense(classes, dtype=dtype)

  def call(self, x, training=False):
    return self.head(self.block(x, training=training))

  def get_config(self):
    return dict(super().get_config(), units=self.units, classes=self.classes)


class NoConfigNet(keras.Model):
  """A subclassed model whose constructor takes an object (no config)."""

  def __init__(self, layer):
    super().__init__()
    self.layer = layer

  def call(self, x):
    return self.layer(x)


def _data(dtype, steps=3, batch=8, features=4, classes=3):
  rng = np.random.default_rng(0)
  batches = [(rng.normal(size=(batch, features)).astype(dtype),
              rng.integers(0, classes, batch).astype(np.int32))
             for _ in range(steps)]
  val = (rng.normal(size=(10, features)).astype(dtype),
         rng.integers(0, classes, 10).astype(np.int32))
  return batches, val


def _directional_error(student, dln, batches, val):
  """|analytic - finite difference| / |finite difference| along a direction.

  e_val in training mode (the validation batch's own BatchNorm statistics,
  as the release and the default recipe): the moving statistics, which the
  hypergradient carries as constants (paper Eq. 4-6), play no part.
  """
  grads, _ = hypergradient.unrolled_hypergradient(
      student, dln, batches, val, LR, validation_training=True)
  analytic, finite = gradcheck.directional_check(
      dln.trainable_variables,
      lambda: gradcheck.validation_error_after_steps(
          student, dln, batches, val, LR, validation_training=True),
      grads, eps=1e-5, seed=1)
  return abs(analytic - finite) / abs(finite)


class MakeExactTest(tf.test.TestCase, parameterized.TestCase):

  def _model_and_dln(self, dtype):
    keras.utils.set_random_seed(0)
    model = SubclassedBNNet(dtype=dtype)
    model(np.zeros((2, 4), dtype))
    dln = dln_lib.PairwiseDLN(hidden_units=(8, 8), dtype=dtype)
    return model, dln

  def test_subclassed_keras_batch_norm_is_taught_exactly(self):
    model, dln = self._model_and_dln("float64")
    batches, val = _data("float64")
    self.assertEqual(user_model.make_exact(model), 1)
    self.assertIsInstance(model.block.layers[1],
                          batch_norm.BatchNormalization)
    self.assertLess(_directional_error(model, dln, batches, val), 1e-6)

  def test_without_it_keras_batch_norm_is_not_exact(self):
    """The control: the same model with Keras' own layer is off."""
    model, dln = self._model_and_dln("float64")
    batches, val = _data("float64")
    self.assertGreater(_directional_error(model, dln, batches, val), 1e-4)

  @parameterized.parameters("float32", "float64")
  def test_outputs_and_weights_are_unchanged(self, dtype):
    model, _ = self._model_and_dln(dtype)
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(dtype)
    weights = model.get_weights()
    before = [model(x, training=False).numpy(), model(x, training=True)]
    model.set_weights(weights)  # Training mode moved the moving statistics.
    user_model.make_exact(model)
    self.assertAllClose(model(x, training=False), before[0])
    self.assertAllClose(model(x, training=True), before[1])


class CloneTest(tf.test.TestCase):

  def _inputs(self):
    return np.zeros((2, 4), np.float32)

  def test_subclassed_model_is_copied_from_its_config(self):
    model = SubclassedBNNet()
    user_model.build(model, self._inputs())
    user_model.make_exact(model)
    copy = user_model.clone(model, self._inputs)
    self.assertIsNot(copy, model)
    self.assertIsInstance(copy.block.layers[1], batch_norm.BatchNormalization)
    for a, b in zip(model.get_weights(), copy.get_weights()):
      self.assertAllEqual(a, b)
    x = np.ones((3, 4), np.float32)
    self.assertAllClose(model(x), copy(x))

  def test_functional_model_is_cloned(self):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    copy = user_model.clone(model, self._inputs)
    self.assertAllEqual(model.get_weights()[0], copy.get_weights()[0])
    self.assertIsNot(copy.layers[1], model.layers[1])

  def test_a_model_without_config_needs_a_function(self):
    model = NoConfigNet(keras.layers.Dense(3))
    user_model.build(model, self._inputs())
    with self.assertRaisesRegex(errors.UserError,
                                "pass a function that builds the model"):
      user_model.clone(model, self._inputs)
    rebuilt = user_model.clone(model, self._inputs,
                               rebuild=lambda: NoConfigNet(
                                   keras.layers.Dense(3)))
    self.assertAllEqual(model.get_weights()[0], rebuilt.get_weights()[0])

  def test_not_a_model_is_a_user_error(self):
    with self.assertRaisesRegex(errors.UserError, "must be a keras.Model"):
      user_model.instantiate("resnet")
    with self.assertRaisesRegex(errors.UserError, "not a keras.Model"):
      user_model.instantiate(lambda: 3)

  def test_a_model_that_cannot_take_x_is_one_line(self):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    with self.assertRaises(errors.UserError) as caught:
      user_model.build(model, self._inputs())
    self.assertNotIn("\n", str(caught.exception))
    self.assertIn("cannot take the data's x", str(caught.exception))


if __name__ == "__main__":
  tf.test.main()
