"""l2t_tf: Learning to Teach with Dynamic Loss Networks (NeurIPS 2023) in TF/Keras."""
from l2t_tf.dln import DetectionDLN, PairwiseDLN
from l2t_tf.hypergradient import unrolled_hypergradient
from l2t_tf.teacher import LSTMTeacher

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
