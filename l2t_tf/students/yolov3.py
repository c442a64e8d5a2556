"""YOLOv3 (Redmon & Farhadi, "YOLOv3: An Incremental Improvement", 2018).

Split in two models, because L2T-DLN (paper Sec. 4.2) freezes the backbone
and trains only the head:

* `darknet53_features`: Darknet-53 from keras-hub (`CSPNetBackbone` with
  dark blocks and depths 1, 2, 8, 8, 4, the same network and parameter count
  as keras-hub's `darknet_53_imagenet` preset), x [B, S, S, 3] in [0, 1] ->
  (C3, C4, C5), the stride 8 / 16 / 32 maps (its pyramid outputs P4/P5/P6).
  It is run once per batch, in inference mode, outside the unrolled steps.
* `yolov3_head`: the YOLOv3 neck and detection heads, (C3, C4, C5) ->
  [P32, P16, P8], raw predictions [B, S/s, S/s, 3 * (5 + classes)] for the
  strides s = 32, 16, 8, each cell holding 3 anchors x (tx, ty, tw, th,
  objectness, class logits). This is the student the teacher unrolls.

The neck is the paper's: at each scale a five-convolution block
(1x1, 3x3, 1x1, 3x3, 1x1), a 3x3 convolution and a 1x1 output convolution;
between scales a 1x1 convolution, 2x nearest upsampling and concatenation
with the backbone map. Convolutions are bias-free with BatchNorm and
LeakyReLU(0.1) (design notes: biased convolutions break unrolled graphs);
the output convolution's bias is a separate additive `Bias` layer whose
objectness entries start at log(0.01 / 0.99) so that the ~10k background
anchors do not swamp the first steps. Upsampling is `tf.repeat`, which has
second derivatives.

Anchors are the nine COCO anchors of the paper at 416 x 416, stored as
fractions of the input size so that they scale with it.
"""
import os

import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.students import batch_norm

# (w, h) in pixels at 416 x 416 (YOLOv3 paper, Sec. 2.3), smallest first.
COCO_ANCHORS = ((10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119),
                (116, 90), (156, 198), (373, 326))
ANCHOR_SIZE = 416.0
STRIDES = (32, 16, 8)  # Order of the head outputs.
# Indices into COCO_ANCHORS used at each stride of STRIDES.
ANCHOR_MASKS = ((6, 7, 8), (3, 4, 5), (0, 1, 2))
OBJECTNESS_PRIOR = 0.01

DARKNET53 = dict(stem_filters=32, depths=(1, 2, 8, 8, 4),
                 filters=(64, 128, 256, 512, 1024))
DARKNET_TINY = dict(stem_filters=4, depths=(1, 1, 1, 1, 1),
                    filters=(8, 8, 16, 16, 16))


def relative_anchors():
  """[9, 2] anchor (w, h) as fractions of the input size."""
  return np.asarray(COCO_ANCHORS, np.float64) / ANCHOR_SIZE


def _load_backbone_weights(backbone, path):
  """Loads local keras-hub weights: a preset directory or a .weights.h5."""
  if os.path.isdir(path):
    path = os.path.join(path, "model.weights.h5")
  if not os.path.isfile(path):
    raise errors.UserError(
        f"darknet53_features.weights: no such file {path!r}. Give a local "
        f"keras-hub preset directory of 'darknet_53_imagenet' (holding "
        f"model.weights.h5) or a .weights.h5 file of the same CSPNetBackbone, "
        f"or None for random weights; nothing is downloaded.")
  backbone.load_weights(path)


@gin.configurable
def darknet53_features(image_size=416, stem_filters=32, depths=(1, 2, 8, 8, 4),
                       filters=(64, 128, 256, 512, 1024), weights=None,
                       dtype=None):
  """Frozen Darknet-53 feature extractor, x -> (C3, C4, C5).

  Args:
    image_size: S, the square input size (a multiple of 32).
    stem_filters, depths, filters: the CSPNet "dark" configuration
      (defaults: Darknet-53; `DARKNET_TINY` is a test net).
    weights: optional local keras-hub preset directory or weights file.
    dtype: Keras dtype policy.
  Returns:
    A non-trainable Keras model [B, S, S, 3] -> three maps of strides 8,
    16, 32 with filters[2], filters[3], filters[4] channels.
  """
  import keras_hub  # pylint: disable=g-import-not-at-top
  if image_size % 32:
    raise errors.UserError(f"image_size must be a multiple of 32, got "
                           f"{image_size}.")
  backbone = keras_hub.models.CSPNetBackbone(
      stem_filters=stem_filters, stem_kernel_size=3, stem_strides=1,
      stackwise_depth=list(depths), stackwise_strides=[2] * 5,
      stackwise_num_filters=list(filters), block_type="dark_block",
      stage_type="dark", bottle_ratio=[0.5], block_ratio=[1.0],
      stem_padding="same", image_shape=(image_size, image_size, 3),
      dtype=dtype)
  if weights:
    _load_backbone_weights(backbone, weights)
  outputs = [backbone.pyramid_outputs[k] for k in ("P4", "P5", "P6")]
  model = keras.Model(backbone.inputs, outputs, name="darknet53_features")
  model.trainable = False
  return model


class Bias(keras.layers.Layer):
  """x + b over the last axis (the output convolution's bias)."""

  def __init__(self, initial_value, **kwargs):
    super().__init__(**kwargs)
    self.initial_value = [float(v) for v in initial_value]
    self.bias = self.add_weight(
        shape=(len(self.initial_value),), name="bias",
        initializer=keras.initializers.Constant(self.initial_value))

  def call(self, x):
    return x + tf.cast(self.bias, x.dtype)

  def get_config(self):
    return dict(super().get_config(), initial_value=self.initial_value)


class NearestUpsample(keras.layers.Layer):
  """2x nearest-neighbour upsampling of [B, H, W, C] by `tf.repeat`."""

  def call(self, x):
    return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


def _conv(x, filters, kernel, name, dtype):
  x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False,
                          name=f"{name}_conv", dtype=dtype)(x)
  x = batch_norm.BatchNormalization(name=f"{name}_bn", dtype=dtype)(x)
  return keras.layers.LeakyReLU(0.1, name=f"{name}_act", dtype=dtype)(x)


def _five_convs(x, filters, name, dtype):
  for i, (f, k) in enumerate(((1, 1), (2, 3), (1, 1), (2, 3), (1, 1))):
    x = _conv(x, filters * f, k, f"{name}_block{i}", dtype)
  return x


def _output(x, filters, num_classes, name, dtype):
  """3x3 conv-BN-LeakyReLU, then the 1x1 output conv with its bias."""
  x = _conv(x, filters * 2, 3, f"{name}_pre", dtype)
  x = keras.layers.Conv2D(3 * (5 + num_classes), 1, use_bias=False,
                          name=f"{name}_out_conv", dtype=dtype)(x)
  prior = np.zeros([3, 5 + num_classes])
  prior[:, 4] = np.log(OBJECTNESS_PRIOR / (1 - OBJECTNESS_PRIOR))
  return Bias(prior.reshape(-1), name=f"{name}_out_bias", dtype=dtype)(x)


@gin.configurable
def yolov3_head(feature_shapes, num_classes=80, neck_filters=(512, 256, 128),
                dtype=None):
  """The YOLOv3 neck and three detection heads (the trained student).

  Args:
    feature_shapes: shapes [H, W, C] of (C3, C4, C5), strides 8, 16, 32.
    num_classes: 80 for COCO.
    neck_filters: 1x1 filters of the five-conv block at strides 32, 16, 8
      (the paper's 512, 256, 128; the 3x3 layers use twice as many).
    dtype: Keras dtype policy.
  Returns:
    Model (C3, C4, C5) -> [P32, P16, P8], each [B, h, w, 3 * (5 + classes)].
  """
  inputs = [keras.Input(tuple(s), dtype=dtype, name=f"c{i + 3}")
            for i, s in enumerate(feature_shapes)]
  x, outputs = inputs[2], []
  for level, filters in enumerate(neck_filters):
    stride = STRIDES[level]
    if level:
      x = _conv(x, filters, 1, f"s{stride}_lateral", dtype)
      x = NearestUpsample(name=f"s{stride}_upsample", dtype=dtype)(x)
      x = keras.layers.Concatenate(name=f"s{stride}_concat", dtype=dtype)(
          [x, inputs[2 - level]])
    x = _five_convs(x, filters, f"s{stride}", dtype)
    outputs.append(_output(x, filters, num_classes, f"s{stride}", dtype))
  return keras.Model(inputs, outputs, name="yolov3_head")

