"""scikit-learn's digits: the embedded default data set (no download).

1797 grey images of 8x8 pixels, 10 classes. A fixed, seed-independent 20 %
hold-out (360 images, stratified) is the test set; the other 1437 images are
the training set that the teaching loop splits into train/validation parts.
"""
import numpy as np
import tensorflow as tf

NUM_CLASSES = 10
INPUT_SHAPE = (8, 8, 1)
TEST_FRACTION = 0.2


def _arrays():
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  x = (digits.images.astype(np.float32) / 16.0)[..., None]
  y = digits.target.astype(np.int32)
  # Stratified fixed split: every 5th example of each class is a test example.
  test = np.zeros(len(y), bool)
  for c in range(NUM_CLASSES):
    idx = np.flatnonzero(y == c)
    test[idx[::int(round(1 / TEST_FRACTION))]] = True
  return x, y, test


def load(split):
  """(dataset of (x [8, 8, 1] float32 in [0, 1], y int32), size)."""
  x, y, test = _arrays()
  keep = test if split == "test" else ~test
  if split not in ("train", "test"):
    raise ValueError(f"digits has splits 'train' and 'test', not {split!r}.")
  return tf.data.Dataset.from_tensor_slices((x[keep], y[keep])), int(keep.sum())
