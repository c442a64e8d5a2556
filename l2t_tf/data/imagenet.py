"""ImageNet (ILSVRC 2012) from tensorflow-datasets, offline (paper Table 1).

tfds' `imagenet2012` is a manual-download data set: prepared data is read
from `data_dir`; otherwise `ILSVRC2012_img_train.tar` and
`ILSVRC2012_img_val.tar` (https://image-net.org/download-images, after
registering) in `manual_dir` are prepared once (hours, ~150 GB); otherwise
the run stops with a `UserError` naming both. The 1.28 M training images are
split by the trainer into the student's and the teacher's parts; the 50 000
validation images are the test set (the ImageNet test labels are not public).

Images stay JPEG-encoded until augmentation (`tfds.decode.SkipDecoding`), so
the shuffle buffer holds bytes and each crop is decoded straight from the
JPEG: training = random resized crop + flip at `image_size` (224), evaluation
= central crop + resize; then per-channel normalisation.
"""
import gin
import tensorflow as tf
import tensorflow_datasets as tfds

from l2t_tf.data import augment
from l2t_tf.data import classification_data
from l2t_tf.data import tfds_source

ARCHIVES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
SOURCE = "https://image-net.org/download-images (registration needed)"


@gin.configurable(denylist=["data_dir", "manual_dir", "dtype"])
class ImageNet2012(classification_data.ClassificationData):
  """ILSVRC 2012, 1000 classes, test set = the official validation split."""
  name = "imagenet2012"
  num_classes = 1000
  # 10 000 encoded JPEGs (~110 KB each, ~1 GB). tfds stores the examples in a
  # hashed (already mixed) order, so a window of this size shuffles well.
  shuffle_buffer = 10_000
  test_split = "validation"

  def __init__(self, data_dir=tfds_source.DEFAULT_DATA_DIR, manual_dir=None,
               dtype=None, image_size=224):
    """Finds (or prepares) the data; raises UserError if it is missing.

    Args:
      data_dir: tfds data directory.
      manual_dir: directory holding the two ILSVRC2012 tar files; default
        <data_dir>/downloads/manual.
      dtype: float dtype of the preprocessed images (default float32).
      image_size: side of the square student input (224 for NASNet-A Mobile;
        small values only for tests).
    """
    self.image_size = int(image_size)
    self.input_shape = (self.image_size, self.image_size, 3)
    self.dtype = tf.as_dtype(dtype or tf.float32)
    self.builder = tfds_source.prepared_builder(
        "imagenet2012", data_dir, manual_dir, ARCHIVES, SOURCE)

  def load(self, split):
    """(dataset of (JPEG bytes scalar string, int32 label), size)."""
    return tfds_source.load(self.builder, split,
                            decoders={"image": tfds.decode.SkipDecoding()})

  def preprocess_train(self, x, y, seed):
    """JPEG bytes -> random resized crop + flip, float [S, S, 3]."""
    image = augment.random_resized_crop_jpeg(x, seed, self.image_size)
    return self._normalize(image), y

  def preprocess_eval(self, x, y):
    """JPEG bytes -> central crop, float [S, S, 3]."""
    image = augment.center_crop_jpeg(x, self.image_size)
    return self._normalize(image), y

  def _normalize(self, image):
    image = tf.ensure_shape(image, self.input_shape)
    return augment.normalize(image, augment.IMAGENET_MEAN,
                             augment.IMAGENET_STD, self.dtype)
