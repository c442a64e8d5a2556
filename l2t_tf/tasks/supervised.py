"""One's own Keras model and data as a task: what `l2t_tf.teach` runs.

`SupervisedTask(student, train_data, test_data)` is a `tasks.base.Task` made
of a Keras model (Functional, Sequential or subclassed, or a function that
builds one) and data given as `(x, y)` arrays or a `tf.data.Dataset`
(`data.user_data`). By default it is a classification task exactly like
the packaged `ClassificationTask`: the pairwise DLN (`dln.classification_dln`,
so its gin bindings apply), cross-entropy as the validation error and as
the CE twin's loss, top-1 accuracy. Labels are class ids or one-hot rows;
the student must return logits [B, C] with C > every label.

Other problems subclass it and override what differs (see
`examples/own_task_regression.py`):

  prepare_labels(examples)          the labels the losses take
  check_outputs(outputs, examples)  what the student must return
  build_dln()                       the DLN, `dln(y_true, y_pred) -> scalar`
  student_loss(dln, y, outputs)     L_phi(S_theta(x), y)   (paper Eq. 1)
  validation_error(y, outputs)      e_val                  (paper Eq. 2)
  validation_metric(y, outputs)     what a controller (ALA) watches; the
                                    classifier's 0-1 error by default
  fixed_loss(y, outputs)            the CE twin's loss (the bound
                                    `SupervisedTask.fixed_loss`, CE by
                                    default)
  metrics(y, outputs)               {name: batch mean}, averaged by
                                    `evaluate` over the test examples;
                                    the first is `primary_metric`

Without `test_data`, a fixed 20 % of `train_data` is held out as the test
set (the same examples at every run). With `validation_data` (e.g. a small
clean, class-balanced trusted set when the training labels are noisy), the
teacher validates on it at every teacher epoch instead of on a part of
`train_data` drawn again each epoch (`fixed_validation_split`); the
students train on all of `train_data`.

The fixed loss is a gin binding, as `ClassificationTask`'s: run a Table 1
baseline on one's own model and data with

    Trainer.method = 'fixed_loss'
    SupervisedTask.fixed_loss = @smooth_01_loss   # or @adaptive_robust_loss()
"""
import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import checks
from l2t_tf import dln as dln_lib
from l2t_tf import errors
from l2t_tf import hypergradient
from l2t_tf.data import user_data
from l2t_tf.students import user_model
from l2t_tf.tasks import base
from l2t_tf.tasks import classification

TEST_FRACTION = 0.2  # Held out of train_data when no test_data is given.


# gin: only the fixed loss (the data and the model are arguments).
@gin.configurable(allowlist=["fixed_loss"])
class SupervisedTask(base.Task):
  """A Keras model and (x, y) data of one's own; classification by default.

  Args:
    student: a `keras.Model` or a function of no argument returning one.
    train_data: `(x, y)` arrays or a `tf.data.Dataset` of `(x, y)`.
    test_data: the same, or None (hold out 20 % of `train_data`).
    augment: optionally `(x, y, seed) -> (x, y)`, training augmentation of
      one example from a stateless [2] int seed (`tf.image.stateless_*`).
    dtype: the float dtype of x (None: float32); the model's own dtype is
      the user's.
    validation_data: the same as `train_data`, or None: the teacher's fixed
      validation set (none of its examples should be in `train_data`).
    fixed_loss: `(y, logits) -> scalar`, the loss of the CE twin and of a
      `Trainer.method = 'fixed_loss'` run; a Keras layer if it has
      parameters (ARLF, trained with the student). Cross-entropy by
      default; gin: `SupervisedTask.fixed_loss = @smooth_01_loss`.
  """
  name = "supervised"
  primary_metric = "test_accuracy"
  shuffle_buffer = 100_000

  def __init__(self, student, train_data, test_data=None, augment=None,
               dtype=None, validation_data=None,
               fixed_loss=hypergradient.sparse_cross_entropy):
    # (A function default: gin leaves it out of the operative config, so
    # runs made before it was configurable resume.)
    self.dtype = checks.float_dtype("dtype", dtype)
    self._student_source, self._augment = student, augment
    self._fixed_loss = fixed_loss
    train = user_data.examples(train_data, "train_data", dtype)
    if test_data is None:
      train, test = user_data.hold_out(train, TEST_FRACTION)
    else:
      test = user_data.examples(test_data, "test_data", dtype)
    self.train = self.prepare_labels(train, "train_data")
    self.test = self.prepare_labels(test, "test_data")
    self.validation = None
    if validation_data is not None:
      validation = self.prepare_labels(user_data.examples(
          validation_data, "validation_data", dtype), "validation_data")
      user_data.check_like(validation, self.train, "validation_data",
                           "train_data")
      self.validation = validation
    self.student = self.comparison_student = self.dln = None

  # ---- what a subclass overrides -----------------------------------------
  def prepare_labels(self, examples, what):
    """Class ids (int32) from ids or one-hot rows (`user_data.class_ids`)."""
    return user_data.class_ids(examples, what)

  def check_outputs(self, outputs, examples):
    """Raises a UserError unless outputs are logits [B, C] covering the labels.
    """
    shape = getattr(outputs, "shape", None)
    if shape is None or shape.rank != 2 or not outputs.dtype.is_floating:
      raise errors.UserError(
          f"student: a classifier must return logits of shape [batch, "
          f"classes], got {_describe(outputs)}.")
    needed = user_data.num_classes_seen(examples)
    if shape[-1] < max(needed, 2):
      raise errors.UserError(
          f"student: the labels go up to {needed - 1}, so the model must "
          f"return at least {max(needed, 2)} logits per example, not "
          f"{shape[-1]} (a binary task needs 2 logits, not a sigmoid unit).")
    if _looks_like_probabilities(outputs):
      raise errors.UserError(
          "student: the model returns probabilities (rows in [0, 1] summing "
          "to 1); remove its final softmax: the DLN and cross-entropy take "
          "logits.")

  def build_dln(self):
    self.dln = dln_lib.classification_dln(dtype=self.dtype)
    return self.dln

  def metrics(self, y, outputs):
    """{name: batch mean}: accuracy (in float64: counts stay whole) and the
    validation error."""
    correct = tf.equal(tf.argmax(outputs, -1, output_type=y.dtype), y)
    return {"test_accuracy": tf.reduce_mean(tf.cast(correct, tf.float64)),
            "test_loss": self.validation_error(y, outputs)}

  def validation_metric(self, y, outputs):
    return classification.zero_one_error(y, outputs)

  def fixed_loss_example(self):
    """A dummy batch of the student's outputs (so after `build_student`)."""
    if self.student is None:
      raise errors.UserError(
          "SupervisedTask.fixed_loss: a loss layer is built on the "
          "student's outputs; build the student first.")
    return self.dummy_batch(self.student)

  # ---- the Task interface ------------------------------------------------
  def build_student(self):
    if (isinstance(self._student_source, keras.Model) and
        tf.distribute.get_strategy().num_replicas_in_sync > 1):
      raise errors.UserError(
          "student: with several replicas the model's variables must be made "
          "under the strategy: pass a function that builds the model "
          "(teach(lambda: make_model(), ...)), not the model.")
    model = user_model.instantiate(self._student_source)
    user_model.make_exact(model)
    x = next(iter(self.train.dataset.batch(8)))[0]  # Real examples.
    outputs = user_model.build(model, x)
    self.check_outputs(outputs, self.train)
    self.check_outputs(outputs, self.test)
    if self.validation is not None:
      x = next(iter(self.validation.dataset.batch(8)))[0]
      self.check_outputs(user_model.build(model, x, "validation_data"),
                         self.validation)
    self.student = model
    return model

  def clone_student(self, student):
    rebuild = (None if student is self._student_source else
               self._student_source)
    self.comparison_student = user_model.clone(student, self.dummy_inputs,
                                               rebuild)
    return self.comparison_student

  def training_set(self):
    return self.train.dataset, self.train.size

  def fixed_validation_split(self):
    """`validation_data`'s (dataset, size), or None without it."""
    if self.validation is None:
      return None
    return self.validation.dataset, self.validation.size

  def test_set(self):
    return self.test.dataset

  def preprocess_train(self, x, y, seed):
    return (x, y) if self._augment is None else self._augment(x, y, seed)

  def check_labels(self, student, y):
    del student, y  # Every label was checked against the outputs (build).

  def evaluate(self, student, dataset):
    """Example-weighted means of `metrics` over the batched `dataset`."""
    predict = classification.predictor(self, student)
    sums, total = {}, 0
    for x, y in dataset:
      n = int(tf.shape(tf.nest.flatten(y)[0])[0])
      for name, value in self.metrics(y, predict(x)).items():
        sums[name] = sums.get(name, 0.0) + float(value) * n
      total += n
    return {name: value / max(total, 1) for name, value in sums.items()}


def _describe(outputs):
  shape = getattr(outputs, "shape", None)
  if shape is None:
    return f"a {type(outputs).__name__}"
  return f"a {outputs.dtype.name} tensor of shape {list(shape)}"


def _looks_like_probabilities(outputs):
  p = np.asarray(outputs, np.float64)
  return bool(p.size and np.all(p >= 0) and np.all(p <= 1) and
              np.allclose(p.sum(axis=-1), 1.0, atol=1e-4))
