"""CIFAR-10 and CIFAR-100 from tensorflow-datasets, offline (paper Table 1).

Prepared data is read from `data_dir` (<data_dir>/cifar10/3.0.2 ...). If it
is missing, the official binary archive (`cifar-10-binary.tar.gz`,
`cifar-100-binary.tar.gz` from https://www.cs.toronto.edu/~kriz/cifar.html)
placed in `manual_dir` is prepared once; otherwise the run stops with a
`UserError` naming both (see `tfds_source`). 50 000 training images (the
trainer splits them into the student's and the teacher's parts) and 10 000
test images, 32x32x3.

Augmentation as the authors' release: pad 4 + random 32x32 crop + horizontal
flip, then per-channel normalisation; evaluation only normalises.
"""
import tensorflow as tf

from l2t_tf.data import augment
from l2t_tf.data import classification_data
from l2t_tf.data import tfds_source

SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html, binary version"


class _Cifar(classification_data.ClassificationData):
  """Shared CIFAR pipeline; subclasses set the tfds name and archive."""
  tfds_name = None
  archive = None
  input_shape = (32, 32, 3)
  # The whole training set (50 000 x 3 KB uint8 = 150 MB): an exact shuffle.
  shuffle_buffer = 50_000
  test_split = "test"

  def __init__(self, data_dir=tfds_source.DEFAULT_DATA_DIR, manual_dir=None,
               dtype=None):
    """Finds (or prepares) the data; raises UserError if it is missing.

    Args:
      data_dir: tfds data directory.
      manual_dir: directory holding `archive`; default
        <data_dir>/downloads/manual.
      dtype: float dtype of the preprocessed images (default float32).
    """
    self.name = self.tfds_name
    self.dtype = tf.as_dtype(dtype or tf.float32)
    self.builder = tfds_source.prepared_builder(
        self.tfds_name, data_dir, manual_dir, [self.archive], SOURCE)

  def load(self, split):
    """(dataset of (uint8 [32, 32, 3], int32 label), size)."""
    return tfds_source.load(self.builder, split)

  def preprocess_train(self, x, y, seed):
    """uint8 [32, 32, 3] -> augmented, normalised float [32, 32, 3]."""
    x = augment.pad_crop_flip(x, seed)
    return self._normalize(x), y

  def preprocess_eval(self, x, y):
    """uint8 [32, 32, 3] -> normalised float [32, 32, 3]."""
    return self._normalize(x), y

  def _normalize(self, x):
    return augment.normalize(x, augment.CIFAR_MEAN, augment.CIFAR_STD,
                             self.dtype)


class Cifar10(_Cifar):
  """CIFAR-10: 10 classes."""
  tfds_name = "cifar10"
  archive = "cifar-10-binary.tar.gz"
  num_classes = 10


class Cifar100(_Cifar):
  """CIFAR-100: 100 fine labels (the coarse labels are not used)."""
  tfds_name = "cifar100"
  archive = "cifar-100-binary.tar.gz"
  num_classes = 100
