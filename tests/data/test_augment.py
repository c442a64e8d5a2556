"""Stateless augmentation: same seed -> same image, shapes, normalisation."""
import io

import numpy as np
from PIL import Image
import tensorflow as tf

from l2t_tf.data import augment
from l2t_tf.data import classification_data
from l2t_tf.data import cifar
from l2t_tf.data import digits
from l2t_tf.data import imagenet


def _jpeg(height, width, seed=0):
  rng = np.random.default_rng(seed)
  buf = io.BytesIO()
  Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                  ).save(buf, format="JPEG")
  return tf.constant(buf.getvalue())


def _cifar_data():
  data = object.__new__(cifar.Cifar10)  # No tfds builder needed for the ops.
  data.dtype = tf.float32
  return data


def _imagenet_data(size):
  data = object.__new__(imagenet.ImageNet2012)
  data.dtype, data.image_size = tf.float32, size
  data.input_shape = (size, size, 3)
  return data


class CifarAugmentTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.image = tf.constant(np.random.default_rng(1).integers(
        0, 256, (32, 32, 3), dtype=np.uint8))

  def test_same_seed_same_image_other_seed_other_image(self):
    seed = tf.constant([7, 3], tf.int64)
    a = augment.pad_crop_flip(self.image, seed)
    self.assertAllEqual(a, augment.pad_crop_flip(self.image, seed))
    self.assertEqual(a.shape, (32, 32, 3))
    self.assertEqual(a.dtype, tf.uint8)
    others = [augment.pad_crop_flip(self.image, tf.constant([7, s], tf.int64))
              for s in range(4, 12)]
    self.assertTrue(any(not np.array_equal(a, o) for o in others))

  def test_crop_is_a_shifted_window_of_the_padded_image(self):
    out = augment.pad_crop_flip(self.image, tf.constant([0, 5], tf.int64))
    padded = np.pad(self.image.numpy(), [[4, 4], [4, 4], [0, 0]])
    windows = [padded[i:i + 32, j:j + 32] for i in range(9) for j in range(9)]
    windows += [w[:, ::-1] for w in windows]
    self.assertTrue(any(np.array_equal(out, w) for w in windows))

  def test_preprocess_normalises_per_channel(self):
    data = _cifar_data()
    x, y = data.preprocess_eval(tf.fill([32, 32, 3], tf.constant(255, tf.uint8)),
                                tf.constant(3))
    expected = (1.0 - np.array(augment.CIFAR_MEAN)) / np.array(augment.CIFAR_STD)
    self.assertAllClose(x[0, 0], expected)
    self.assertEqual(int(y), 3)
    xt, _ = data.preprocess_train(self.image, y, tf.constant([1, 2], tf.int64))
    self.assertEqual(xt.dtype, tf.float32)
    self.assertEqual(xt.shape, (32, 32, 3))


class ImageNetAugmentTest(tf.test.TestCase):

  def test_random_resized_crop_is_deterministic_in_the_seed(self):
    jpeg, seed = _jpeg(57, 83), tf.constant([11, 4], tf.int64)
    a = augment.random_resized_crop_jpeg(jpeg, seed, 40)
    self.assertAllEqual(a, augment.random_resized_crop_jpeg(jpeg, seed, 40))
    self.assertEqual(a.shape, (40, 40, 3))
    others = [augment.random_resized_crop_jpeg(
        jpeg, tf.constant([11, s], tf.int64), 40) for s in range(5, 10)]
    self.assertTrue(any(not np.array_equal(a, o) for o in others))

  def test_center_crop_shape_and_preprocess(self):
    data = _imagenet_data(24)
    x, _ = data.preprocess_eval(_jpeg(50, 90), tf.constant(1))
    self.assertEqual(x.shape, (24, 24, 3))
    self.assertEqual(x.dtype, tf.float32)
    xt, _ = data.preprocess_train(_jpeg(50, 90), tf.constant(1),
                                  tf.constant([0, 1], tf.int64))
    self.assertEqual(xt.shape, (24, 24, 3))

  def test_center_crop_takes_the_middle(self):
    # Left half black, right half white: a central square crop is half/half.
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, 64:] = 255
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=100)
    out = augment.center_crop_jpeg(tf.constant(buf.getvalue()), 32).numpy()
    self.assertLess(out[:, :12].mean(), 20)
    self.assertGreater(out[:, -12:].mean(), 235)


class DigitsDataTest(tf.test.TestCase):

  def test_digits_keeps_its_data_and_has_no_augmentation(self):
    data = classification_data.Digits()
    dataset, size = data.load("train")
    reference, reference_size = digits.load("train")
    self.assertEqual(size, reference_size)
    x, y = next(iter(dataset))
    self.assertAllEqual(x, next(iter(reference))[0])
    xa, ya = data.preprocess_train(x, y, tf.constant([0, 0], tf.int64))
    self.assertAllEqual(x, xa)
    self.assertEqual(int(y), int(ya))


if __name__ == "__main__":
  tf.test.main()
