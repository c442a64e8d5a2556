"""Letterbox resizing of detection images and their boxes, with jitter.

YOLOv3 (Redmon & Farhadi 2018) takes a square S x S input: the image is
scaled to fit (aspect ratio kept) and padded with grey. For training a
random scale factor, a random placement and a horizontal flip are drawn from
a stateless seed, so a resumed run sees the same pixels; a scaled-up image
is cropped to the canvas and boxes are clipped to it.

Boxes are (x1, y1, x2, y2) in pixels, [M, 4], padded with -1; classes [M]
padded with -1. A box left with less than `MIN_SIZE` pixels of width or
height inside the canvas becomes padding; boxes keep their order.

Not keras-cv's `Resizing(pad_to_aspect_ratio=True)`: it puts the image in
the top-left corner on black (boxes shifted by the whole offset against
ours). Nor Keras' own `keras.layers.Resizing(pad_to_aspect_ratio=True,
fill_value=0.5)`: it pads the original image to a square and then resizes,
so the grey border is blended into the image's edge pixels and the offset
is rounded in original pixels (pixels up to 0.14 apart from ours, 0.014 on
average, on a 333 x 500 image at S = 96). Neither draws the training
jitter (scale, placement, flip, crop of a scaled-up image) nor drops the
boxes that it cuts away; `to_original` inverts exactly this placement.
"""
import tensorflow as tf

FILL = 0.5  # Grey padding, images in [0, 1].
MIN_SIZE = 2.0


def load_image(path):
  """JPEG/PNG file -> float32 [h, w, 3] in [0, 1]."""
  image = tf.io.decode_image(tf.io.read_file(path), channels=3,
                             expand_animations=False)
  return tf.image.convert_image_dtype(image, tf.float32)


def placement(height, width, size, scale=1.0, where=(0.5, 0.5)):
  """Resize factor r, resized (h, w) and the (top, left) offset, int32.

  r = scale * size / max(height, width); the offset puts the resized image
  at fraction `where` of the free (or, if larger, overhanging) room.
  """
  height = tf.cast(height, tf.float32)
  width = tf.cast(width, tf.float32)
  ratio = scale * size / tf.maximum(height, width)
  new_h = tf.maximum(tf.cast(tf.round(height * ratio), tf.int32), 1)
  new_w = tf.maximum(tf.cast(tf.round(width * ratio), tf.int32), 1)
  top = tf.cast(tf.floor(tf.cast(size - new_h, tf.float32) * where[0]),
                tf.int32)
  left = tf.cast(tf.floor(tf.cast(size - new_w, tf.float32) * where[1]),
                 tf.int32)
  return ratio, new_h, new_w, top, left


def _paste(image, size, top, left):
  """Pastes image [h, w, 3] at (top, left) of a grey S x S canvas (crops)."""
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  src_top, src_left = tf.maximum(-top, 0), tf.maximum(-left, 0)
  dst_top, dst_left = tf.maximum(top, 0), tf.maximum(left, 0)
  ch = tf.minimum(h - src_top, size - dst_top)
  cw = tf.minimum(w - src_left, size - dst_left)
  crop = image[src_top:src_top + ch, src_left:src_left + cw] - FILL
  canvas = tf.pad(crop, [[dst_top, size - dst_top - ch],
                         [dst_left, size - dst_left - cw], [0, 0]]) + FILL
  return tf.ensure_shape(canvas, [size, size, 3])


def _move_boxes(boxes, classes, ratio, top, left, size, flip):
  """Scales, shifts, clips (and flips) boxes; drops the ones cut away."""
  valid = classes >= 0
  shift = tf.cast(tf.stack([left, top, left, top]), tf.float32)
  moved = tf.clip_by_value(boxes * ratio + shift, 0.0, float(size))
  if flip is not None:
    flipped = tf.stack([size - moved[:, 2], moved[:, 1], size - moved[:, 0],
                        moved[:, 3]], -1)
    moved = tf.where(flip, flipped, moved)
  wh = moved[:, 2:] - moved[:, :2]
  valid &= tf.reduce_all(wh >= MIN_SIZE, -1)
  boxes = tf.where(valid[:, None], moved, -tf.ones_like(moved))
  return boxes, tf.where(valid, classes, -tf.ones_like(classes))


def letterbox(image, boxes, classes, size, scale=1.0, where=(0.5, 0.5),
              flip=None):
  """image [h, w, 3] in [0, 1] -> ([S, S, 3], boxes [M, 4], classes [M]).

  Args:
    image: float image; boxes, classes: its padded ground truth.
    size: S.
    scale: extra scale factor (1 = fit exactly).
    where: (vertical, horizontal) placement fractions in [0, 1].
    flip: optional scalar bool tensor, flip horizontally.
  """
  shape = tf.shape(image)
  ratio, new_h, new_w, top, left = placement(shape[0], shape[1], size, scale,
                                             where)
  resized = tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear")
  canvas = _paste(resized, size, top, left)
  if flip is not None:
    canvas = tf.cond(flip, lambda: tf.reverse(canvas, [1]), lambda: canvas)
  boxes, classes = _move_boxes(tf.cast(boxes, tf.float32), classes, ratio,
                               top, left, size, flip)
  return canvas, boxes, classes


def random_letterbox(image, boxes, classes, size, seed,
                     scale_range=(0.75, 1.25), flip_probability=0.5):
  """Letterbox with a random scale, placement and flip from `seed` [2]."""
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
  scale = tf.random.stateless_uniform([], seeds[0], scale_range[0],
                                      scale_range[1])
  where = (tf.random.stateless_uniform([], seeds[1]),
           tf.random.stateless_uniform([], seeds[2]))
  flip = tf.random.stateless_uniform([], seeds[3]) < flip_probability
  return letterbox(image, boxes, classes, size, scale, where, flip)


def to_original(boxes, height, width, size):
  """Inverse of the evaluation letterbox: input-pixel boxes -> image pixels.

  boxes [..., 4] (x1, y1, x2, y2) of the centred, unscaled letterbox of an
  image of `height` x `width`; returns them clipped to that image.
  """
  ratio, _, _, top, left = placement(height, width, size)
  shift = tf.cast(tf.stack([left, top, left, top]), boxes.dtype)
  original = (boxes - shift) / tf.cast(ratio, boxes.dtype)
  limit = tf.cast(tf.stack([width, height, width, height]), boxes.dtype)
  return tf.clip_by_value(original, 0.0, limit)
