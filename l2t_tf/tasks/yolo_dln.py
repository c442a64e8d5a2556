"""`YoloDLN`: the detection DLN on YOLOv3's raw head outputs (paper Sec. 4.2).

It lives with the detection task, not in the engine's `dln.py`, because it
computes the YOLO loss terms (`yolo_loss`) before the engine's
`DetectionDLN` weighs them: the engine imports no task.
"""
import gin
import keras

from l2t_tf import dln as dln_lib
from l2t_tf.tasks import yolo_loss


@keras.saving.register_keras_serializable(package="l2t_tf")
class YoloDLN(dln_lib.DetectionDLN):
  """The detection DLN on YOLOv3 outputs: sum_k w_k mean_b l_k (+ b).

  Paper Sec. 4.2: a single-layer perceptron over [l_cls, l_conf, l_loc],
  initialised at w = 1 (the baseline's plain sum). Called with the raw head
  outputs [P32, P16, P8] (the Task's `dln(y, outputs)` contract) it first
  computes the per-image terms [B, 3] from y; called with a terms tensor
  [..., 3] it is exactly `dln.DetectionDLN` (the exported SavedModel's use).
  """

  def __init__(self, image_size, num_classes, use_bias=False, **kwargs):
    super().__init__(num_terms=len(yolo_loss.TERMS), use_bias=use_bias,
                     **kwargs)
    self.image_size, self.num_classes = int(image_size), int(num_classes)

  def call(self, y_true, y_pred):
    if isinstance(y_pred, (list, tuple)):
      y_pred = yolo_loss.loss_terms(y_true, y_pred, self.image_size,
                                    self.num_classes)
    return super().call(y_true, y_pred)

  def get_config(self):
    config = super().get_config()
    del config["num_terms"]
    return dict(config, image_size=self.image_size,
                num_classes=self.num_classes)


@gin.configurable
def yolo_dln(image_size, num_classes, use_bias=False, dtype=None):
  """Gin factory of `YoloDLN`."""
  return YoloDLN(image_size, num_classes, use_bias=use_bias, dtype=dtype)
