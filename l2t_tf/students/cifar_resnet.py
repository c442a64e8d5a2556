"""CIFAR ResNets (He et al. 2016, Sec. 4.2): depth 6n + 2, stages w, 2w, 4w.

`width=16` is the classic CIFAR ResNet (16/32/64 channels); `width=64` is the
wide variant of the authors' release (64/128/256, about 1.24 M parameters for
ResNet8). Convolutions have no bias (they precede BatchNorm; design notes:
biased convolutions make unrolled graphs fail at random).

`data_format="channels_first"` runs the network in NCHW (inputs stay NHWC
and are transposed once); a measured lever of issue 13, slower on TF's CPU
kernels (`tools/speed_vs_peer.py --levers=all`).
"""
import gin
import keras
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.students import batch_norm
from l2t_tf.students import layers


DATA_FORMATS = ("channels_last", "channels_first")


@keras.saving.register_keras_serializable(package="l2t_tf")
class ToChannelsFirst(keras.layers.Layer):
  """[B, H, W, C] -> [B, C, H, W]."""

  def call(self, inputs):
    return tf.transpose(inputs, [0, 3, 1, 2])


def _bn(dtype, data_format):
  axis = 1 if data_format == "channels_first" else -1
  return batch_norm.BatchNormalization(axis=axis, dtype=dtype)


def _basic_block(x, filters, strides, dtype, data_format):
  """conv-BN-ReLU-conv-BN + shortcut (1x1 conv-BN when the shape changes)."""
  shortcut = x
  channels = x.shape[1 if data_format == "channels_first" else -1]
  y = layers.conv(filters, strides, dtype, data_format)(x)
  y = _bn(dtype, data_format)(y)
  y = keras.layers.ReLU(dtype=dtype)(y)
  y = layers.conv(filters, 1, dtype, data_format)(y)
  y = _bn(dtype, data_format)(y)
  if strides != 1 or channels != filters:
    shortcut = layers.conv(filters, strides, dtype, data_format, kernel=1)(x)
    shortcut = _bn(dtype, data_format)(shortcut)
  return keras.layers.ReLU(dtype=dtype)(keras.layers.Add(dtype=dtype)(
      [y, shortcut]))


@gin.configurable
def cifar_resnet(input_shape=(32, 32, 3), num_classes=10, depth=8, width=16,
                 dtype=None, data_format="channels_last"):
  """ResNet-`depth` (8, 20, 32, 44, 56, 110): NHWC images -> logits [B, C]."""
  if (depth - 2) % 6:
    raise errors.UserError(f"cifar_resnet.depth must be 6n + 2 (8, 20, 32, "
                           f"...), got {depth}.")
  if data_format not in DATA_FORMATS:
    raise errors.UserError(f"cifar_resnet.data_format must be one of "
                           f"{DATA_FORMATS}, got {data_format!r}.")
  blocks = (depth - 2) // 6
  inputs = keras.Input(input_shape, dtype=dtype)
  x = inputs
  if data_format == "channels_first":
    x = ToChannelsFirst(dtype=dtype)(x)
  x = layers.conv(width, 1, dtype, data_format)(x)
  x = _bn(dtype, data_format)(x)
  x = keras.layers.ReLU(dtype=dtype)(x)
  for stage in range(3):
    for block in range(blocks):
      strides = 2 if stage > 0 and block == 0 else 1
      x = _basic_block(x, width * 2**stage, strides, dtype, data_format)
  x = keras.layers.GlobalAveragePooling2D(data_format=data_format,
                                          dtype=dtype)(x)
  outputs = keras.layers.Dense(num_classes, dtype=dtype)(x)
  return keras.Model(inputs, outputs, name=f"resnet{depth}_w{width}")
