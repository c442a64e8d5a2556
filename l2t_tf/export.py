"""The learned DLN as a product: a SavedModel usable as a Keras loss.

`export_dln` writes a SavedModel with one signature,
`loss(y_true int32 [...], y_pred float [..., C]) -> scalar`, and a JSON file
describing the DLN; `load_dln` reads it back as a `keras.losses.Loss`, so a
fresh student can be trained with `model.compile(loss=l2t_tf.load_dln(p))`.
"""
import json
import os

import keras
import tensorflow as tf

from l2t_tf import strict_json


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
  """Saves `dln` as a SavedModel at `path`; returns `path`."""
  tf.saved_model.save(_DLNModule(dln), path)
  info = {"class": type(dln).__name__, "config": dln.get_config(),
          "dtype": dln.compute_dtype}
  info.update(description or {})
  with tf.io.gfile.GFile(os.path.join(path, "dln.json"), "w") as f:
    strict_json.dump(info, f, indent=1, default=str)
  return path


class LoadedDLN(keras.losses.Loss):
  """A DLN read from a SavedModel, as a Keras loss (y_true, y_pred) -> scalar."""

  def __init__(self, path, name="dln"):
    super().__init__(name=name, reduction="sum_over_batch_size")
    self.path = path
    self.module = tf.saved_model.load(path)
    with tf.io.gfile.GFile(os.path.join(path, "dln.json")) as f:
      self.dtype_in = tf.as_dtype(json.load(f)["dtype"])

  def call(self, y_true, y_pred):
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank is not None and y_true.shape.rank == y_pred.shape.rank:
      y_true = tf.squeeze(y_true, -1)  # Keras may pass labels as [B, 1].
    return tf.cast(self.module.loss(tf.cast(y_true, tf.int32),
                                    tf.cast(y_pred, self.dtype_in)),
                   y_pred.dtype)

  def get_config(self):
    return {"path": self.path, "name": self.name}


def load_dln(path):
  """Loads a DLN exported by `export_dln` as a `keras.losses.Loss`."""
  if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
    raise FileNotFoundError(f"No exported DLN at {path!r} (expected "
                            f"{path}/saved_model.pb, written by export_dln).")
  return LoadedDLN(path)
