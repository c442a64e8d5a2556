"""The learned DLN as a product: a Keras loss, a `.keras` file, a SavedModel.

`export_dln(dln, path)` writes, into the directory `path`,

* `dln.keras`: the DLN layer in Keras' own format (the DLN layers are
  registered with `keras.saving`, package "l2t_tf");
* a TF SavedModel with one signature `loss(y_true int32 [...], y_pred float
  [..., C]) -> scalar`, for TensorFlow serving and other languages;
* `dln.json`, what the DLN is (class, config, dtype, the run's task).

`load_dln(path)` reads either back (the directory, or a `.keras` file) as a
`DLNLoss`, a `keras.losses.Loss`, so a fresh model trains with
`model.compile(loss=l2t_tf.load_dln(path))`. A `DLNLoss` carries the DLN's
config and weights in its own config, so a model compiled with it saves
and loads as a `.keras` file on its own.
"""
import json
import os

import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib  # noqa: F401  (registers the DLN layers)
from l2t_tf import errors
from l2t_tf import strict_json

KERAS_FILE = "dln.keras"


class _DLNModule(tf.Module):

  def __init__(self, dln):
    super().__init__(name="dln")
    self.dln = dln
    dtype = tf.as_dtype(dln.compute_dtype)
    self.loss = tf.function(
        lambda y_true, y_pred: dln(y_true, y_pred),
        input_signature=[tf.TensorSpec(None, tf.int32),
                         tf.TensorSpec(None, dtype)])


def export_dln(dln, path, description=None):
  """Saves `dln` into the directory `path` (see the module); returns it."""
  tf.saved_model.save(_DLNModule(dln), path)
  keras.saving.save_model(dln, os.path.join(path, KERAS_FILE))
  info = {"class": type(dln).__name__, "config": dln.get_config(),
          "dtype": dln.compute_dtype}
  info.update(description or {})
  with tf.io.gfile.GFile(os.path.join(path, "dln.json"), "w") as f:
    strict_json.dump(info, f, indent=1, default=str)
  return path


@keras.saving.register_keras_serializable(package="l2t_tf")
class DLNLoss(keras.losses.Loss):
  """A DLN as a Keras loss `(y_true, y_pred) -> scalar`.

  Classification DLNs (`PairwiseDLN`) take y_pred logits [B, C] (or
  [..., C]) and y_true as integer class ids [B] or [B, 1] (ints or whole
  floats, as Keras passes them) or one-hot rows [B, C]; a detection DLN
  takes its loss terms as y_pred. The DLN's weights are copied when the
  loss is made: teaching the DLN further does not change it.

  Args:
    dln: a DLN layer, or its Keras serialization (from `get_config`).
    weights: the DLN's weights (lists of numbers), with a serialized `dln`.
    name: the loss's name.
  """

  def __init__(self, dln, weights=None, name="dln_loss", **kwargs):
    super().__init__(name=name, reduction="sum_over_batch_size", **kwargs)
    if isinstance(dln, dict):
      dln = keras.saving.deserialize_keras_object(dln)
    else:
      weights = dln.get_weights()
      dln = type(dln).from_config(dln.get_config())
    if weights is not None:
      dln.set_weights([np.asarray(w, dtype=v.dtype)
                       for w, v in zip(weights, dln.weights)])
    self.dln = dln

  def call(self, y_true, y_pred):
    loss = self.dln(y_true, y_pred)
    return tf.cast(loss, y_pred.dtype)

  def get_config(self):
    return {"name": self.name,
            "dln": keras.saving.serialize_keras_object(self.dln),
            "weights": [w.tolist() for w in self.dln.get_weights()]}


def _read_keras(path):
  try:
    return keras.saving.load_model(path)
  except (ValueError, TypeError, OSError) as e:
    raise errors.UserError(f"{path} is not a DLN saved by l2t_tf "
                           f"({type(e).__name__}: {e})") from None


def load_dln(path):
  """A `DLNLoss` from `export_dln`'s directory or a DLN `.keras` file.

  Raises:
    UserError: nothing exported by `export_dln` is at `path`.
  """
  path = os.fspath(path)
  if path.endswith(".keras") and tf.io.gfile.exists(path):
    return DLNLoss(_read_keras(path))
  if tf.io.gfile.exists(os.path.join(path, KERAS_FILE)):
    return DLNLoss(_read_keras(os.path.join(path, KERAS_FILE)))
  if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
    return LoadedDLN(path)  # Exported before dln.keras was written.
  raise errors.UserError(
      f"no exported DLN at {path!r}: expected a .keras file or a directory "
      f"written by l2t_tf.export_dln (a run's <model_dir>/dln_export).")


class LoadedDLN(keras.losses.Loss):
  """A DLN read from a SavedModel only (exports older than `dln.keras`)."""

  def __init__(self, path, name="dln"):
    super().__init__(name=name, reduction="sum_over_batch_size")
    self.path = path
    self.module = tf.saved_model.load(path)
    with tf.io.gfile.GFile(os.path.join(path, "dln.json")) as f:
      self.dtype_in = tf.as_dtype(json.load(f)["dtype"])

  def call(self, y_true, y_pred):
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = dln_lib.class_ids(y_true, y_pred)
    return tf.cast(self.module.loss(tf.cast(y_true, tf.int32),
                                    tf.cast(y_pred, self.dtype_in)),
                   y_pred.dtype)

  def get_config(self):
    return {"path": self.path, "name": self.name}
