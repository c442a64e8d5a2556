"""Stateless image augmentation and normalisation (paper Sec. 4.1).

Every random choice is drawn from an explicit `seed` ([2] int tensor) with
TensorFlow's stateless ops, so the same (seed, example index) gives the same
augmented image in a resumed run (the trainer derives one seed per example,
`data.splits.round_batches`).

* CIFAR (He et al. 2016, as in the authors' release): zero-pad 4 pixels, random
  32x32 crop, random horizontal flip.
* ImageNet (Szegedy et al. 2015, the Inception / TF-official recipe): random
  resized crop (area 8-100 %, aspect ratio 3/4-4/3) decoded straight from the
  JPEG bytes, resize to `size`, random flip; evaluation takes a central crop of
  size/(size + 32) of the shorter side and resizes it to `size`.
"""
import tensorflow as tf

# Per-channel statistics in [0, 1] units.
CIFAR_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)  # The authors' release
CIFAR_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)      # (CIFAR-10 and -100).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(image, mean, std, dtype=tf.float32):
  """uint8 [..., H, W, 3] -> (image / 255 - mean) / std as `dtype`."""
  image = tf.cast(image, dtype) / tf.constant(255.0, dtype)
  return ((image - tf.constant(mean, dtype)) /
          tf.constant(std, dtype))


def split_seed(seed, num):
  """`num` independent [2] seeds from one [2] seed."""
  return tf.unstack(tf.random.experimental.stateless_split(
      tf.cast(seed, tf.int64), num=num))


def pad_crop_flip(image, seed, padding=4):
  """CIFAR augmentation. image [H, W, C] -> [H, W, C], same dtype.

  Zero-padding happens before normalisation (black borders), as
  torchvision's `RandomCrop(32, padding=4)` in the authors' release.
  """
  crop_seed, flip_seed = split_seed(seed, 2)
  shape = tf.shape(image)
  padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
  image = tf.image.stateless_random_crop(padded, shape, seed=crop_seed)
  return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)


def random_resized_crop_jpeg(jpeg, seed, size, area_range=(0.08, 1.0),
                             aspect_ratio_range=(3 / 4, 4 / 3),
                             min_object_covered=0.1):
  """ImageNet training augmentation from encoded JPEG bytes.

  Args:
    jpeg: scalar string tensor, one JPEG image of any size.
    seed: [2] int seed.
    size: side of the square output.
    area_range, aspect_ratio_range, min_object_covered: of the sampled crop,
      as `tf.image.stateless_sample_distorted_bounding_box`.

  Returns:
    uint8 [size, size, 3].
  """
  box_seed, flip_seed = split_seed(seed, 2)
  shape = tf.image.extract_jpeg_shape(jpeg)
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
      seed=box_seed, min_object_covered=min_object_covered,
      aspect_ratio_range=aspect_ratio_range, area_range=area_range,
      max_attempts=10, use_image_if_no_bounding_boxes=True)
  window = tf.stack([begin[0], begin[1], crop_size[0], crop_size[1]])
  image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)
  image = _resize(image, size)
  return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)


def center_crop_jpeg(jpeg, size, crop_padding=32):
  """ImageNet evaluation: JPEG bytes -> uint8 [size, size, 3] central crop.

  The crop side is size / (size + crop_padding) of the shorter image side
  (224 / 256 = 0.875 at the standard size), then resized to `size`.
  """
  shape = tf.image.extract_jpeg_shape(jpeg)
  height, width = shape[0], shape[1]
  fraction = size / (size + crop_padding)
  side = tf.cast(fraction * tf.cast(tf.minimum(height, width), tf.float32),
                 tf.int32)
  top, left = (height - side + 1) // 2, (width - side + 1) // 2
  window = tf.stack([top, left, side, side])
  image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)
  return _resize(image, size)


def _resize(image, size):
  image = tf.image.resize(image, [size, size], method="bilinear")
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
