"""Random images: a classification data set for benchmarks and tests.

x ~ N(0, 1) of shape `input_shape` (already "normalised"), y uniform in
[0, num_classes), independent of x: nothing to learn, only shapes, dtypes and
costs. `load` gives fixed examples from `seed` (the task's training and
test sets); `examples` and `batch` draw new ones from a caller's numpy
Generator, as NumPy arrays (`examples`) or as tensors made by TensorFlow in
place from two seeds taken from it (`batch`, cheap for big benchmark
batches).
"""
import numpy as np
import tensorflow as tf

from l2t_tf.data import classification_data

SPLITS = ("train", "test")


class SyntheticImages(classification_data.ClassificationData):
  """Random float images [H, W, channels] and int32 labels.

  Args:
    input_shape: (H, W, channels) of one image.
    num_classes: C; labels are in [0, C).
    dtype: float dtype of the images; None: float32.
    seed: seed of the examples `load` returns.
    size: number of training examples `load("train")` returns.
    test_size: number of test examples `load("test")` returns.
  """
  name = "synthetic"

  def __init__(self, input_shape=(32, 32, 3), num_classes=10, dtype=None,
               seed=0, size=1000, test_size=200):
    self.input_shape = tuple(input_shape)
    self.num_classes = int(num_classes)
    self.dtype = tf.as_dtype(dtype or tf.float32)
    self.seed, self.sizes = seed, {"train": size, "test": test_size}
    self.shuffle_buffer = size

  def examples(self, rng, shape):
    """NumPy (x [*shape, *input_shape] dtype, y [*shape] int32) from `rng`."""
    shape = tuple(shape)
    x = rng.normal(size=shape + self.input_shape)
    y = rng.integers(0, self.num_classes, size=shape)
    return x.astype(self.dtype.as_numpy_dtype), y.astype(np.int32)

  def batch(self, rng, shape):
    """Tensors (x [*shape, *input_shape], y [*shape] int32), made by TF.

    Stateless draws from a [2] seed s taken from `rng` (x from s, y from
    s + 1), so no NumPy copy of the images is made.
    """
    shape = tuple(shape)
    seed = rng.integers(0, 2**31, size=2)
    x = tf.random.stateless_normal(shape + self.input_shape, seed=seed,
                                   dtype=self.dtype)
    y = tf.random.stateless_uniform(shape, seed=seed + 1,
                                    maxval=self.num_classes, dtype=tf.int32)
    return x, y

  def load(self, split):
    """(unbatched dataset of (x, y), size): the same examples every call."""
    if split not in SPLITS:
      raise ValueError(f"synthetic images have splits {SPLITS}, not "
                       f"{split!r}.")
    rng = np.random.default_rng([self.seed, SPLITS.index(split)])
    size = self.sizes[split]
    return tf.data.Dataset.from_tensor_slices(
        self.examples(rng, (size,))), size
