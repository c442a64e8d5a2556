"""l2t_tf: Learning to Teach with Dynamic Loss Networks (NeurIPS 2023) in TF/Keras.

TensorFlow is imported first, without its start-up noise on a CPU machine
(`l2t_tf.tf_startup`; TF_CPP_MIN_LOG_LEVEL=0 shows everything).
"""
from l2t_tf import tf_startup

tf_startup.import_tensorflow()

# pylint: disable=g-import-not-at-top,wrong-import-position
from l2t_tf.dln import DetectionDLN, PairwiseDLN  # noqa: E402
from l2t_tf.hypergradient import unrolled_hypergradient  # noqa: E402
from l2t_tf.teacher import LSTMTeacher  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

__all__ = ["DetectionDLN", "PairwiseDLN", "LSTMTeacher",
           "unrolled_hypergradient", "load_dln", "export_dln"]


def load_dln(path):
  """Loads an exported DLN as a Keras loss `(y_true, y_pred) -> scalar`."""
  from l2t_tf import export  # pylint: disable=g-import-not-at-top
  return export.load_dln(path)


def export_dln(dln, path, description=None):
  """Exports a DLN as a SavedModel (see `l2t_tf.export`)."""
  from l2t_tf import export  # pylint: disable=g-import-not-at-top
  return export.export_dln(dln, path, description)
