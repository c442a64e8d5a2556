"""Random images (data/synthetic.py): numpy draws, tf batches, fixed loads.

The draws are pinned to the formulas the benchmark and the PyTorch
cross-check used before they shared the task, so their numbers stay.
"""
import numpy as np
import tensorflow as tf

from l2t_tf.data import synthetic as synthetic_data


class SyntheticImagesTest(tf.test.TestCase):

  def test_examples_are_numpy_draws(self):
    data = synthetic_data.SyntheticImages((8, 8, 3), 3, "float64")
    x, y = data.examples(np.random.default_rng(4), (2, 5))
    rng = np.random.default_rng(4)
    self.assertAllEqual(x, rng.normal(size=(2, 5, 8, 8, 3)))
    self.assertAllEqual(y, rng.integers(0, 3, size=(2, 5)))
    self.assertEqual((x.dtype, y.dtype), (np.float64, np.int32))

  def test_batch_is_made_by_tf_from_two_seeds(self):
    data = synthetic_data.SyntheticImages(num_classes=7)
    x, y = data.batch(np.random.default_rng(0), (3, 4))
    seed = np.random.default_rng(0).integers(0, 2**31, size=2)
    self.assertAllEqual(x, tf.random.stateless_normal((3, 4, 32, 32, 3),
                                                      seed=seed))
    self.assertAllEqual(y, tf.random.stateless_uniform(
        (3, 4), seed=seed + 1, maxval=7, dtype=tf.int32))
    self.assertEqual((x.dtype, y.dtype), (tf.float32, tf.int32))

  def test_load_is_fixed_by_the_seed(self):
    data = synthetic_data.SyntheticImages((4, 4, 1), 5, seed=3, size=6,
                                          test_size=2)
    (train, size), (test, test_size) = data.load("train"), data.load("test")
    self.assertEqual((size, test_size), (6, 2))
    first = list(train.as_numpy_iterator())
    self.assertLen(first, 6)
    self.assertEqual(first[0][0].shape, (4, 4, 1))
    for (x, y), (x2, y2) in zip(first, data.load("train")[0]):
      self.assertAllEqual(x, x2)
      self.assertEqual(y, y2)
    self.assertNotAllClose(next(iter(test))[0], first[0][0])
    other = synthetic_data.SyntheticImages((4, 4, 1), 5, seed=4, size=6)
    self.assertNotAllClose(next(iter(other.load("train")[0]))[0],
                           first[0][0])
    with self.assertRaisesRegex(ValueError, "splits"):
      data.load("validation")


if __name__ == "__main__":
  tf.test.main()
