"""Image classification (paper Sec. 4.1, Table 1).

Student: any Keras classifier returning logits [B, C]. DLN: the pairwise DLN
(`dln.classification_dln`). Validation error: cross-entropy. Metric: top-1
accuracy on the test set.
"""
import gin
import numpy as np
import tensorflow as tf

from l2t_tf import errors

from l2t_tf import dln as dln_lib
from l2t_tf import hypergradient
from l2t_tf.data import digits
from l2t_tf.students import digits_cnn
from l2t_tf.tasks import base

# name -> module with load(split) -> (dataset, size), NUM_CLASSES, INPUT_SHAPE.
DATASETS = {"digits": digits}


@gin.configurable
class ClassificationTask(base.Task):
  """Classification of `dataset` with `student` taught through `dln`."""
  primary_metric = "test_accuracy"

  def __init__(self, dataset="digits", student=digits_cnn.digits_cnn,
               dln=dln_lib.classification_dln,
               baseline_loss=hypergradient.sparse_cross_entropy, dtype=None):
    if dataset not in DATASETS:
      raise errors.UserError(f"ClassificationTask.dataset must be one of "
                       f"{sorted(DATASETS)}, got {dataset!r}.")
    self.name = f"classification_{dataset}"
    self.data = DATASETS[dataset]
    self.student_fn, self.dln_fn, self.dtype = student, dln, dtype
    self._baseline_loss = baseline_loss

  def build_student(self):
    return self.student_fn(input_shape=self.data.INPUT_SHAPE,
                           num_classes=self.data.NUM_CLASSES, dtype=self.dtype)

  def build_dln(self):
    return self.dln_fn(dtype=self.dtype)

  def training_set(self):
    return self.data.load("train")

  def test_set(self):
    return self.data.load("test")[0]

  def baseline_loss(self, y, outputs):
    """The hand-designed loss (CE by default; issue 5's baselines by gin)."""
    return self._baseline_loss(y, outputs)

  def check_labels(self, student, y):
    y = np.asarray(y)
    num_outputs = student.output_shape[-1]
    if y.min() < 0 or y.max() >= num_outputs:
      raise errors.UserError(
          f"labels: the data has labels in [{y.min()}, {y.max()}] but the "
          f"student '{student.name}' predicts {num_outputs} classes "
          f"(0..{num_outputs - 1}); check the data set and num_classes.")

  def evaluate(self, student, dataset):
    predict = tf.function(lambda x: student(x, training=False))
    correct, total, loss_sum = 0, 0, 0.0
    for x, y in dataset:
      logits = predict(x)
      y = tf.cast(y, tf.int64)
      correct += int(tf.reduce_sum(tf.cast(
          tf.equal(tf.argmax(logits, -1), y), tf.int32)))
      total += int(tf.shape(y)[0])
      loss_sum += float(self.validation_error(y, logits)) * int(tf.shape(y)[0])
    return {"test_accuracy": correct / max(total, 1),
            "test_loss": loss_sum / max(total, 1)}
