"""One's own data for `l2t_tf.teach`: numpy arrays or a `tf.data.Dataset`.

`examples(data, what)` turns what a user passes, the way Keras' `fit` takes
it, into the form the teaching loop splits and batches: an *unbatched*
`tf.data.Dataset` of `(x, y)` pairs in a fixed order, with its size. It
accepts

* a pair `(x, y)` of arrays (numpy, lists, tensors) with as many rows each;
* a `tf.data.Dataset` of `(x, y)` pairs, of examples or of batches (a
  dataset whose `x` has an unknown leading dimension, as `.batch()` makes,
  is read as batches and unbatched).

`x` may be a nest (a dict of inputs); its float leaves are cast to the
task's dtype. One pass over the data (numpy: vectorised) counts it and
checks it: a mistake is one line, a `UserError` naming `what` (wrong
structure, no example, rows that disagree, an infinite dataset, a NaN or
infinite value). It also gathers the label statistics a classification task
checks (`Labels`). The dataset must yield the same examples in the same
order every time it is iterated (the trainer shuffles and re-divides it
every teacher epoch): do not `shuffle` it with reshuffling, nor `repeat` it.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.data import splits

_SCAN_BATCH = 4096  # Examples per step of the checking pass (tf.data).


@dataclasses.dataclass(frozen=True)
class Labels:
  """What the checking pass saw of the labels y (all examples).

  Attributes:
    shape: the shape of one example's y, e.g. () or (1,) or (C,).
    integral: every value is a whole number.
    minimum, maximum: the least and greatest value.
    one_hot: y has a last axis of size > 1 whose rows are 0/1 with one 1.
  """
  shape: tuple
  integral: bool
  minimum: float
  maximum: float
  one_hot: bool


@dataclasses.dataclass(frozen=True)
class Examples:
  """Unbatched `(x, y)` examples, their count and what y holds."""
  dataset: tf.data.Dataset
  size: int
  labels: Labels


def _fail(what, problem):
  raise errors.UserError(f"{what}: {problem}")


def _float_leaves_to(dtype):
  def cast(x):
    return tf.nest.map_structure(
        lambda t: tf.cast(t, dtype) if t.dtype.is_floating else t, x)
  return cast


def _array(what, value, name):
  try:
    array = np.asarray(value)
  except (ValueError, TypeError) as e:
    _fail(what, f"{name} is not an array ({e}).")
  if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or
                                   array.dtype == bool):
    _fail(what, f"{name} must be numbers, got an array of {array.dtype}.")
  return array


def _label_stats(ys):
  """`Labels` of a list of label arrays [n_i, ...] (all examples)."""
  y = np.concatenate([np.reshape(a, (len(a), -1)) for a in ys]).astype(
      np.float64)
  shape = tuple(ys[0].shape[1:])
  one_hot = bool(len(shape) == 1 and shape[0] > 1 and np.all(
      (y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))
  return Labels(shape=shape, integral=bool(np.all(y == np.round(y))),
                minimum=float(y.min()), maximum=float(y.max()),
                one_hot=one_hot)


def _check_finite(what, leaves, name):
  for leaf in leaves:
    if np.issubdtype(leaf.dtype, np.floating) and not np.all(
        np.isfinite(leaf)):
      bad = int(np.sum(~np.isfinite(leaf)))
      _fail(what, f"{name} holds {bad} NaN or infinite value(s); clean the "
            f"data (e.g. np.nan_to_num) or drop those examples.")


def _from_arrays(what, data):
  if len(data) != 2:
    _fail(what, f"give (x, y): a pair of arrays, got {len(data)} items.")
  x = tf.nest.map_structure(lambda v: _array(what, v, "x"), data[0])
  y = _array(what, data[1], "y")
  leaves = tf.nest.flatten(x)
  sizes = {len(leaf) if leaf.ndim else 0 for leaf in leaves}
  if len(sizes) != 1 or y.ndim == 0 or sizes != {len(y)}:
    _fail(what, f"x and y must have one row per example; x has "
          f"{sorted(sizes)} rows, y {len(y) if y.ndim else 0}.")
  if not len(y):
    _fail(what, "there is no example.")
  _check_finite(what, leaves, "x")
  _check_finite(what, [y], "y")
  dataset = tf.data.Dataset.from_tensor_slices((x, y))
  return dataset, len(y), _label_stats([y])


def _is_batched(spec):
  """Whether a dataset's x spec has an unknown leading axis (batches)."""
  leaves = tf.nest.flatten(spec)
  return all(s.shape.rank is not None and s.shape.rank > 0 and
             s.shape[0] is None for s in leaves)


def _from_dataset(what, dataset):
  spec = dataset.element_spec
  if not isinstance(spec, tuple) or len(spec) != 2:
    _fail(what, f"a tf.data.Dataset must yield (x, y) pairs; its elements "
          f"are {spec}.")
  if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
    _fail(what, "the dataset is infinite (repeat()); give one pass over the "
          "data: the trainer repeats it.")
  if _is_batched(spec[0]):
    dataset = dataset.unbatch()
  size, ys = 0, []
  for x, y in dataset.batch(_SCAN_BATCH):
    leaves = [leaf.numpy() for leaf in tf.nest.flatten(x)]
    _check_finite(what, leaves, "x")
    y = y.numpy()
    _check_finite(what, [y], "y")
    size += len(y)
    ys.append(y)
  if not size:
    _fail(what, "the dataset has no example.")
  return dataset, size, _label_stats(ys)


def examples(data, what, dtype=None):
  """Checked `Examples` of one's own data (see the module docstring).

  Args:
    data: `(x, y)` arrays or a `tf.data.Dataset` of `(x, y)` pairs.
    what: the argument's name in messages, e.g. 'train_data'.
    dtype: float dtype the float leaves of x are cast to (None: float32).
  Raises:
    UserError: a one-line description of what is wrong with `data`.
  """
  if isinstance(data, tf.data.Dataset):
    dataset, size, labels = _from_dataset(what, data)
  elif isinstance(data, (tuple, list)):
    dataset, size, labels = _from_arrays(what, data)
  else:
    _fail(what, f"give (x, y) arrays or a tf.data.Dataset of (x, y) pairs, "
          f"got {type(data).__name__}.")
  dataset = dataset.map(lambda x, y: (_float_leaves_to(dtype or tf.float32)(
      x), y))
  return Examples(dataset=dataset, size=size, labels=labels)


def class_ids(examples_, what):
  """`examples_` with y as int32 class ids (from ids or one-hot rows).

  Raises:
    UserError: labels that are neither whole numbers >= 0 (in [B] or [B, 1])
      nor one-hot rows.
  """
  labels = examples_.labels
  if labels.one_hot:
    to_ids = lambda y: tf.argmax(y, axis=-1, output_type=tf.int32)
  elif labels.shape in ((), (1,)) and labels.integral and labels.minimum >= 0:
    to_ids = lambda y: tf.reshape(tf.cast(y, tf.int32), [])
  else:
    _fail(what, f"class labels must be integer ids >= 0 (shape [n] or [n, "
          f"1]) or one-hot rows; got labels of shape {list(labels.shape)} "
          f"per example with values in [{labels.minimum:g}, "
          f"{labels.maximum:g}]{'' if labels.integral else ', not whole'}.")
  dataset = examples_.dataset.map(lambda x, y: (x, to_ids(y)))
  return dataclasses.replace(examples_, dataset=dataset)


def _spec_text(spec):
  return str(tf.nest.map_structure(
      lambda s: f"{s.dtype.name}{list(s.shape)}", spec))


def check_like(examples_, reference, what, reference_what):
  """Raises a UserError unless `examples_` are shaped as `reference`'s.

  The same nest of x and y, each leaf of the same dtype and a compatible
  shape per example (after `class_ids`), e.g. validation_data as
  train_data: the same student takes both.
  """
  spec, ref = examples_.dataset.element_spec, reference.dataset.element_spec
  try:
    tf.nest.assert_same_structure(spec, ref)
    alike = all(s.dtype == r.dtype and s.shape.is_compatible_with(r.shape)
                for s, r in zip(tf.nest.flatten(spec), tf.nest.flatten(ref)))
  except (ValueError, TypeError):
    alike = False
  if not alike:
    _fail(what, f"its examples (x, y) are {_spec_text(spec)} each, "
          f"{reference_what}'s {_spec_text(ref)}; give them the same "
          f"shapes.")


def num_classes_seen(examples_):
  """1 + the greatest class id (after `class_ids`)."""
  labels = examples_.labels
  return labels.shape[-1] if labels.one_hot else int(labels.maximum) + 1


def hold_out(examples_, fraction, seed=(22, 2023)):
  """(rest, held_out) `Examples`: a fixed `fraction` of them held out.

  Example i is held out iff u_i < fraction with u = stateless_uniform(
  [size], seed): the same examples at every call (used as the test set when
  none is given).
  """
  u = tf.random.stateless_uniform([examples_.size], seed=seed,
                                  dtype=tf.float64)
  rest, held, n_rest, n_held = splits.partition(
      examples_.dataset, examples_.size, u < fraction)
  return (dataclasses.replace(examples_, dataset=rest, size=n_rest),
          dataclasses.replace(examples_, dataset=held, size=n_held))
