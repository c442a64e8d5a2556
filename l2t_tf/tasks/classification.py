"""Image classification (paper Sec. 4.1, Table 1).

Student: any Keras classifier returning logits [B, C]. DLN: the pairwise DLN
(`dln.classification_dln`). Validation error: cross-entropy. Metric: top-1
accuracy on the test set.

The data set is a pluggable `data.classification_data.ClassificationData`
object, chosen by name ('digits', 'cifar10', 'cifar100', 'imagenet2012') or
passed directly; it supplies the examples, their shape and classes, the
augmentation (`preprocess_train`, stateless from a seed) and the evaluation
preprocessing, which this task forwards as its Task hooks.
"""
import gin
import numpy as np
import tensorflow as tf

from l2t_tf import checks
from l2t_tf import dln as dln_lib
from l2t_tf import errors
from l2t_tf import hypergradient
from l2t_tf.data import cifar
from l2t_tf.data import classification_data
from l2t_tf.data import imagenet
from l2t_tf.data import tfds_source
from l2t_tf.students import digits_cnn
from l2t_tf.tasks import base

# name -> ClassificationData class, built as cls(data_dir, manual_dir, dtype).
DATASETS = {
    "digits": classification_data.Digits,
    "cifar10": cifar.Cifar10,
    "cifar100": cifar.Cifar100,
    "imagenet2012": imagenet.ImageNet2012,
}


def make_dataset(dataset, data_dir, manual_dir, dtype):
  """A ClassificationData from a name in DATASETS or the object itself."""
  if isinstance(dataset, classification_data.ClassificationData):
    return dataset
  if dataset not in DATASETS:
    raise errors.UserError(f"ClassificationTask.dataset must be one of "
                           f"{sorted(DATASETS)}, got {dataset!r}.")
  return DATASETS[dataset](data_dir=data_dir, manual_dir=manual_dir,
                           dtype=dtype)


@gin.configurable
class ClassificationTask(base.Task):
  """Classification of `dataset` with `student` taught through `dln`."""
  primary_metric = "test_accuracy"

  def __init__(self, dataset="digits", student=digits_cnn.digits_cnn,
               dln=dln_lib.classification_dln,
               fixed_loss=hypergradient.sparse_cross_entropy, dtype=None,
               data_dir=tfds_source.DEFAULT_DATA_DIR, manual_dir=None):
    """Builds the task; a missing tfds data set raises UserError here.

    Args:
      dataset: a name in DATASETS or a ClassificationData object.
      student: factory (input_shape, num_classes, dtype) -> Keras model.
      dln: factory (dtype) -> DLN layer.
      fixed_loss: (y, logits) -> scalar, the CE baseline's loss.
      dtype: float dtype of the student, the DLN and the images.
      data_dir: tensorflow-datasets data directory (tfds data sets only).
      manual_dir: directory of the original archives; default
        <data_dir>/downloads/manual.
    """
    dtype = checks.float_dtype("ClassificationTask.dtype", dtype)
    self.data = make_dataset(dataset, data_dir, manual_dir, dtype)
    self.name = f"classification_{self.data.name}"
    self.shuffle_buffer = self.data.shuffle_buffer
    self.student_fn, self.dln_fn, self.dtype = student, dln, dtype
    self._fixed_loss = fixed_loss

  def build_student(self):
    return checks.call("ClassificationTask.student", self.student_fn,
                       input_shape=tuple(self.data.input_shape),
                       num_classes=self.data.num_classes, dtype=self.dtype)

  def build_dln(self):
    return checks.call("ClassificationTask.dln", self.dln_fn,
                       dtype=self.dtype)

  def training_set(self):
    return self.data.load("train")

  def test_set(self):
    return self.data.load(self.data.test_split)[0]

  def preprocess_train(self, x, y, seed):
    return self.data.preprocess_train(x, y, seed)

  def preprocess_eval(self, x, y):
    return self.data.preprocess_eval(x, y)

  def dummy_inputs(self, batch_size=2):
    """A zero batch of x shaped like preprocessed examples."""
    return classification_data.zeros_batch(self.data, batch_size,
                                           self.dtype)[0]

  def dummy_batch(self, student, batch_size=2):
    """(y, outputs) of a zero batch shaped like preprocessed examples."""
    x, y = classification_data.zeros_batch(self.data, batch_size, self.dtype)
    return y, student(x, training=False)

  def fixed_loss_example(self):
    return (tf.zeros([2], tf.int32),
            tf.zeros([2, self.data.num_classes], self.dtype or "float32"))

  def validation_metric(self, y, outputs):
    return zero_one_error(y, outputs)

  def check_labels(self, student, y):
    check_label_range(y, student.output_shape[-1], student.name)

  def evaluate(self, student, dataset):
    return evaluate_classifier(predictor(self, student), dataset,
                               self.validation_error)


def zero_one_error(y, outputs):
  """0-1 error of the logits `outputs` [B, C] on int labels `y` [B]."""
  correct = tf.equal(tf.argmax(outputs, -1, output_type=y.dtype), y)
  return 1.0 - tf.reduce_mean(tf.cast(correct, outputs.dtype))


def check_label_range(y, num_outputs, model_name):
  """Raises a UserError unless the int labels y are in [0, num_outputs)."""
  y = np.asarray(y)
  if y.min() < 0 or y.max() >= num_outputs:
    raise errors.UserError(
        f"labels: the data has labels in [{y.min()}, {y.max()}] but the "
        f"student '{model_name}' predicts {num_outputs} classes "
        f"(0..{num_outputs - 1}); check the data set and num_classes.")


def predictor(owner, student):
  """One inference tf.function per student (traced once, reused).

  Cached on `owner` (the task), keyed by the student.
  """
  cache = owner.__dict__.setdefault("_predictors", {})
  if id(student) not in cache:
    cache[id(student)] = (student, tf.function(
        lambda x: student(x, training=False)))
  return cache[id(student)][1]


def evaluate_classifier(predict, dataset, validation_error):
  """{"test_accuracy", "test_loss"} of `predict` on batched (x, y) data.

  test_loss is `validation_error` (cross-entropy), averaged over examples.
  """
  correct, total, loss_sum = 0, 0, 0.0
  for x, y in dataset:
    logits = predict(x)
    y = tf.cast(y, tf.int64)
    correct += int(tf.reduce_sum(tf.cast(
        tf.equal(tf.argmax(logits, -1), y), tf.int32)))
    total += int(tf.shape(y)[0])
    loss_sum += float(validation_error(y, logits)) * int(tf.shape(y)[0])
  return {"test_accuracy": correct / max(total, 1),
          "test_loss": loss_sum / max(total, 1)}
