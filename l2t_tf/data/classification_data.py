"""The pluggable data set of `ClassificationTask`.

A `ClassificationData` object owns everything data-specific of an image
classification experiment: the examples (`load`), their shape and classes,
the augmentation (`preprocess_train`, stateless from a seed), the
deterministic evaluation preprocessing and a sensible shuffle buffer.
`ClassificationTask` builds the student from `input_shape`/`num_classes` and
forwards its Task hooks here.
"""
import tensorflow as tf

from l2t_tf.data import digits


class ClassificationData:
  """Interface of a classification data set; subclass and set the fields.

  Attributes:
    name: short name used in the task name, e.g. 'cifar10'.
    num_classes: C, labels are int32 in [0, C).
    input_shape: (H, W, channels) of a preprocessed example (student input).
    shuffle_buffer: examples held by the trainer's shuffle of the training and
      validation parts.
    test_split: split used as the test set.
  """
  name = "data"
  num_classes = None
  input_shape = None
  shuffle_buffer = 10_000
  test_split = "test"

  def load(self, split):
    """(unbatched dataset of (x, int32 y), size) of 'train' or `test_split`."""
    raise NotImplementedError

  def preprocess_train(self, x, y, seed):
    """Training augmentation of one example from a [2] int seed."""
    del seed
    return x, y

  def preprocess_eval(self, x, y):
    """Deterministic preprocessing of one validation/test example."""
    return x, y


class Digits(ClassificationData):
  """scikit-learn's digits (`data.digits`): float [8, 8, 1], no augmentation.

  Takes (and ignores) the tfds directories so that every data set is built
  with the same arguments.
  """
  name = "digits"
  num_classes = digits.NUM_CLASSES
  input_shape = digits.INPUT_SHAPE
  shuffle_buffer = 10_000  # >= the 1437 training examples: a full shuffle.

  def __init__(self, data_dir=None, manual_dir=None, dtype=None):
    del data_dir, manual_dir, dtype

  def load(self, split):
    return digits.load(split)


def zeros_batch(data, batch_size, dtype=None):
  """(x [B, *input_shape] zeros, y [B] int32 zeros): a batch after preprocessing."""
  x = tf.zeros([batch_size] + list(data.input_shape), dtype or tf.float32)
  return x, tf.zeros([batch_size], tf.int32)
