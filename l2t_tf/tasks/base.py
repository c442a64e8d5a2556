"""The Task interface: what Algorithm 1 needs from a task.

Model Garden style: a Task builds the student, the DLN, the data and the
metrics and defines the losses; the one teaching loop (`trainer.py`) does the
rest. Classification, segmentation (main + 0.4 aux head, per pixel, ignore
label) and detection (a vector of loss terms) each subclass `Task`.
"""
import abc

import keras
import tensorflow as tf

from l2t_tf import hypergradient
from l2t_tf.students import user_model


class Task(abc.ABC):
  """Base class of a task; override the abstract methods.

  Data contract: `training_set()` and `test_set()` return *unbatched*
  `tf.data.Dataset`s of `(x, y)` pairs (nests allowed) with a known size; the
  trainer splits the training set into the student's training part and the
  teacher's validation part at every teacher epoch, batches and shuffles.
  A task with a fixed validation set (`fixed_validation_split`, e.g. a
  small clean, trusted one) has no such split: the teacher validates on
  that set at every epoch and the student trains on all of `training_set()`.
  """
  name = "task"
  #: Name of the metric `evaluate` returns first; reported as the result.
  primary_metric = "test_accuracy"
  #: Shuffle buffer used on the training/validation parts (examples).
  shuffle_buffer = 10_000

  @abc.abstractmethod
  def build_student(self):
    """A built Keras model mapping a batch of x to the outputs of `losses`."""

  @abc.abstractmethod
  def build_dln(self):
    """The DLN layer, `dln(y_true, y_pred) -> scalar`."""

  @abc.abstractmethod
  def training_set(self):
    """(dataset, size): unbatched (x, y) examples the split is drawn from."""

  @abc.abstractmethod
  def test_set(self):
    """Unbatched (x, y) examples for the final evaluation."""

  def fixed_validation_split(self):
    """(dataset, size) of the teacher's fixed validation examples, or None.

    None (the default): the trainer draws the validation part from the
    training set again at every teacher epoch (`data.splits.split`).
    Otherwise these unbatched (x, y) examples are the validation part of
    every epoch, and none of them is in `training_set()`.
    """
    return None

  def student_loss(self, dln, y, outputs):
    """L_phi(S_theta(x), y): the DLN applied to the student outputs."""
    return dln(y, outputs)

  def validation_error(self, y, outputs):
    """e_val: cross-entropy on logits by default."""
    return hypergradient.sparse_cross_entropy(y, outputs)

  def validation_metric(self, y, outputs):
    """The error metric a controller watches (ALA); e_val unless overridden."""
    return self.validation_error(y, outputs)

  #: The bound hand-designed loss (a function or a Keras layer) of a task
  #: that lets gin choose it; None: cross-entropy.
  _fixed_loss = None

  def fixed_loss(self, y, outputs):
    """The hand-designed loss of the baseline student (CE unless bound)."""
    if self._fixed_loss is None:
      return hypergradient.sparse_cross_entropy(y, outputs)
    return self._fixed_loss(y, outputs)

  def fixed_loss_layer(self):
    """The baseline loss as a Keras layer if it has learnable parameters.

    Such parameters (e.g. the shape and scale of Barron's adaptive robust
    loss) are trained by SGD together with the student; None if there are
    none. An unbuilt layer is built here (inside the strategy scope) on
    `fixed_loss_example()`.
    """
    loss = self._fixed_loss
    if not isinstance(loss, keras.layers.Layer):
      return None
    if not loss.built:
      loss(*self.fixed_loss_example())
    return loss if loss.trainable_variables else None

  def fixed_loss_example(self):
    """(y, outputs) of a small batch a fixed loss layer is built on."""
    raise NotImplementedError(
        f"{type(self).__name__}: a fixed loss layer needs fixed_loss_example")

  def preprocess_train(self, x, y, seed):
    """Training-time augmentation with a stateless `seed` ([2] int); default none."""
    del seed
    return x, y

  def test_batches(self, batch_size):
    """Batched test data for `evaluate` (override for variable-size inputs)."""
    return self.test_set().map(self.preprocess_eval).batch(batch_size)

  def heldout_batches(self, examples, batch_size):
    """Batched held-out training examples (`Trainer.heldout_ratio`) for
    `evaluate`; the test set's pipeline by default."""
    return examples.map(self.preprocess_eval).batch(batch_size)

  def preprocess_eval(self, x, y):
    """Deterministic preprocessing of validation/test examples; default none."""
    return x, y

  def _zeros(self, index, batch_size):
    """Zeros shaped like a batch of the training set's x (0) or y (1)."""
    spec = self.training_set()[0].element_spec[index]
    return tf.nest.map_structure(
        lambda s: tf.zeros([batch_size] + list(s.shape), s.dtype), spec)

  def dummy_inputs(self, batch_size=2):
    """A batch of zeros the student takes (x)."""
    return self._zeros(0, batch_size)

  def dummy_batch(self, student, batch_size=2):
    """A (y, outputs) pair used to check the DLN returns a scalar."""
    return (self._zeros(1, batch_size),
            student(self.dummy_inputs(batch_size), training=False))

  def clone_student(self, student):
    """The CE twin: a copy of `student` with its weights (any Keras model,
    `students.user_model.clone`)."""
    return user_model.clone(student, self.dummy_inputs)

  def check_labels(self, student, y):
    """Raises ValueError if labels y cannot be predicted by the student."""
    del student, y

  @abc.abstractmethod
  def evaluate(self, student, dataset):
    """Metrics dict (primary metric first) of `student` on batched `dataset`."""
