"""One's own Keras model as a student: exact, built, checked, copied.

A student of `l2t_tf.teach` may be any Keras model, Functional, Sequential
or subclassed, or a function of no argument that builds one. Before
teaching it is

* made exact (`make_exact`): Keras' `BatchNormalization` computes its
  variance with `tf.nn.moments`, which stops the gradient through the batch
  mean; that is exact in first order but not in second, so the unrolled
  hypergradient (paper Eq. 4-6) would be silently wrong. Each such layer,
  wherever it sits in the model, becomes `students.batch_norm.
  BatchNormalization` (same weights and config, exact moments) in place.
  `LayerNormalization` and `GroupNormalization` use the same moments and
  have no exact twin here: a warning names them.
* built on a batch of the data (`build`), so that a subclassed model has its
  variables, and its outputs are returned for the task to check.
* copied for its CE twin (`clone`): `keras.models.clone_model` for
  Functional and Sequential models (as every packaged student), else a new
  instance from the model's config (Keras 3 records a subclassed model's
  constructor arguments when they are plain values), or the function that
  built it, called again; the twin then takes the student's weights.
"""
import re

from absl import logging
import keras
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.students import batch_norm

# Keras layers whose moments stop a gradient, without an exact twin here.
_INEXACT = (keras.layers.LayerNormalization, keras.layers.GroupNormalization)


def _layers(model):
  """Every layer inside `model`, nested ones included."""
  return list(model._flatten_layers(include_self=False, recursive=True))  # pylint: disable=protected-access


def make_exact(model):
  """Turns `model`'s Keras BatchNormalization layers into exact ones.

  In place (their class changes; weights, config and names stay). Returns
  the number of layers changed.
  """
  changed = 0
  for layer in _layers(model):
    if type(layer) is keras.layers.BatchNormalization:  # pylint: disable=unidiomatic-typecheck
      layer.__class__ = batch_norm.BatchNormalization
      layer.fused = batch_norm.fused_batch_norm()
      layer.sync = batch_norm.sync_batch_norm()
      changed += 1
    elif isinstance(layer, _INEXACT):
      logging.warning(
          "%s '%s': its second derivatives are not exact in TensorFlow "
          "(tf.nn.moments stops the gradient through the mean), so the "
          "hypergradient through it is approximate; BatchNormalization is "
          "exact.", type(layer).__name__, layer.name)
  return changed


def instantiate(student, what="student"):
  """The Keras model `student` is, or that the function `student` builds."""
  if isinstance(student, keras.Model):
    return student
  if callable(student):
    model = student()
    if isinstance(model, keras.Model):
      return model
    raise errors.UserError(
        f"{what}: the function given as the student returned a "
        f"{type(model).__name__}, not a keras.Model.")
  raise errors.UserError(
      f"{what} must be a keras.Model (Functional, Sequential or subclassed) "
      f"or a function of no argument that builds one, got "
      f"{type(student).__name__}.")


def build(model, x, what="student"):
  """Calls `model` on the batch `x` (inference mode); returns its outputs.

  Raises:
    UserError: the model cannot take x (its first line, and x's shapes).
  """
  try:
    return model(x, training=False)
  except (ValueError, TypeError, tf.errors.InvalidArgumentError) as e:
    shapes = tf.nest.map_structure(lambda t: list(t.shape), x)
    raise errors.UserError(
        f"{what}: the model cannot take the data's x (a batch of shape "
        f"{shapes}): {type(e).__name__}: {_reason(e)}") from None


def _reason(error):
  """The line of a Keras error that says what is wrong (no ANSI codes)."""
  lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
           for line in str(error).splitlines()]
  lines = [line for line in lines if line and not line.startswith(
      "Exception encountered")] or [""]
  return lines[0][:300]


def _copy_of(model, rebuild):
  """A new model like `model` (clone_model, from_config or `rebuild`)."""
  if isinstance(model, keras.Sequential) or getattr(
      model, "_is_graph_network", False) or type(model) is keras.Model:  # pylint: disable=unidiomatic-typecheck
    return keras.models.clone_model(model)
  if rebuild is not None:
    return instantiate(rebuild)
  try:
    return type(model).from_config(model.get_config())
  except (NotImplementedError, TypeError, ValueError, KeyError) as e:
    raise errors.UserError(
        f"student: the CE twin needs a copy of the subclassed model "
        f"{type(model).__name__}, which Keras cannot make from its config "
        f"({type(e).__name__}); pass a function that builds the model "
        f"(teach(lambda: {type(model).__name__}(...), ...)) or implement "
        f"get_config().") from None


def clone(model, inputs, rebuild=None):
  """A copy of `model` with its weights, exact, built if it needs to be.

  Args:
    model: a built Keras model (`make_exact` done).
    inputs: () -> a batch of x the model takes (to build a subclassed copy).
    rebuild: optionally the function of no argument that built `model`.
  """
  copy = _copy_of(model, rebuild)
  make_exact(copy)
  if not copy.built or not copy.weights:
    build(copy, inputs())
  copy.set_weights(model.get_weights())
  return copy
