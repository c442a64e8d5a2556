"""CIFAR ResNets (He et al. 2016, Sec. 4.2): depth 6n + 2, stages w, 2w, 4w.

`width=16` is the classic CIFAR ResNet (16/32/64 channels); `width=64` is the
wide variant of the authors' release (64/128/256, about 1.24 M parameters for
ResNet8). Convolutions have no bias (they precede BatchNorm; design notes:
biased convolutions make unrolled graphs fail at random).
"""
import gin
import keras

from l2t_tf import errors
from l2t_tf.students import batch_norm


def _conv(filters, strides, dtype, kernel=3):
  return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same",
                             use_bias=False, kernel_initializer="he_normal",
                             dtype=dtype)


def _basic_block(x, filters, strides, dtype):
  """conv-BN-ReLU-conv-BN + shortcut (1x1 conv-BN when the shape changes)."""
  shortcut = x
  y = _conv(filters, strides, dtype)(x)
  y = batch_norm.BatchNormalization(dtype=dtype)(y)
  y = keras.layers.ReLU(dtype=dtype)(y)
  y = _conv(filters, 1, dtype)(y)
  y = batch_norm.BatchNormalization(dtype=dtype)(y)
  if strides != 1 or x.shape[-1] != filters:
    shortcut = _conv(filters, strides, dtype, kernel=1)(x)
    shortcut = batch_norm.BatchNormalization(dtype=dtype)(shortcut)
  return keras.layers.ReLU(dtype=dtype)(keras.layers.Add(dtype=dtype)(
      [y, shortcut]))


@gin.configurable
def cifar_resnet(input_shape=(32, 32, 3), num_classes=10, depth=8, width=16,
                 dtype=None):
  """ResNet-`depth` (8, 20, 32, 44, 56, 110) returning logits [B, classes]."""
  if (depth - 2) % 6:
    raise errors.UserError(f"cifar_resnet.depth must be 6n + 2 (8, 20, 32, "
                           f"...), got {depth}.")
  blocks = (depth - 2) // 6
  inputs = keras.Input(input_shape, dtype=dtype)
  x = _conv(width, 1, dtype)(inputs)
  x = batch_norm.BatchNormalization(dtype=dtype)(x)
  x = keras.layers.ReLU(dtype=dtype)(x)
  for stage in range(3):
    for block in range(blocks):
      strides = 2 if stage > 0 and block == 0 else 1
      x = _basic_block(x, width * 2**stage, strides, dtype)
  x = keras.layers.GlobalAveragePooling2D(dtype=dtype)(x)
  outputs = keras.layers.Dense(num_classes, dtype=dtype)(x)
  return keras.Model(inputs, outputs, name=f"resnet{depth}_w{width}")
