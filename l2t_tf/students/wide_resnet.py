"""Wide residual networks (Zagoruyko & Komodakis 2016): WRN-depth-k.

The paper's Table 1 "WRN" student is WRN-28-10 (36.5 M parameters): a 3x3
stem with 16 channels, three groups of (depth - 4) / 6 pre-activation basic
blocks with 16k, 32k, 64k channels (strides 1, 2, 2), BN-ReLU, global average
pooling and a dense layer producing logits. Every convolution precedes a
BatchNorm and has no bias (design notes: biased convolutions make unrolled
graphs fail at random).

Dropout between the two convolutions of a block (WRN's optional 0.3) is off
by default: the unrolled hypergradient replays each step functionally and a
random dropout mask would need its own seed state.
"""
import gin
import keras

from l2t_tf import errors
from l2t_tf.students import batch_norm
from l2t_tf.students import layers


def _bn_relu(x, dtype):
  x = batch_norm.BatchNormalization(dtype=dtype)(x)
  return keras.layers.ReLU(dtype=dtype)(x)


def _wide_block(x, filters, strides, dropout_rate, dtype):
  """Pre-activation block: BN-ReLU-conv-(dropout)-BN-ReLU-conv + shortcut.

  The shortcut is a bias-free 1x1 convolution of the pre-activated input when
  the shape changes (as in the WRN reference code), the identity otherwise.
  """
  activated = _bn_relu(x, dtype)
  y = layers.conv(filters, strides, dtype)(activated)
  y = _bn_relu(y, dtype)
  if dropout_rate:
    y = keras.layers.Dropout(dropout_rate, dtype=dtype)(y)
  y = layers.conv(filters, 1, dtype)(y)
  shortcut = x
  if strides != 1 or x.shape[-1] != filters:
    shortcut = layers.conv(filters, strides, dtype, kernel=1)(activated)
  return keras.layers.Add(dtype=dtype)([y, shortcut])


@gin.configurable
def wide_resnet(input_shape=(32, 32, 3), num_classes=10, depth=28,
                widen_factor=10, base_width=16, dropout_rate=0.0, dtype=None):
  """WRN-`depth`-`widen_factor` returning logits [B, num_classes].

  Args:
    input_shape: (H, W, C) of one image.
    num_classes: number of logits.
    depth: 6n + 4 (28 for WRN-28-10).
    widen_factor: k; the groups have base_width * k * (1, 2, 4) channels.
    base_width: 16 in the WRN paper (smaller only for tests).
    dropout_rate: dropout inside each block (0 = none, the default here).
    dtype: layer dtype (None = Keras default).

  Returns:
    A `keras.Model` mapping [B, H, W, C] to logits [B, num_classes].
  """
  if depth < 10 or (depth - 4) % 6:
    raise errors.UserError(f"wide_resnet.depth must be 6n + 4 (10, 16, 22, "
                           f"28, ...), got {depth}.")
  blocks = (depth - 4) // 6
  inputs = keras.Input(input_shape, dtype=dtype)
  x = layers.conv(base_width, 1, dtype)(inputs)
  for group in range(3):
    filters = base_width * widen_factor * 2**group
    for block in range(blocks):
      strides = 2 if group > 0 and block == 0 else 1
      x = _wide_block(x, filters, strides, dropout_rate, dtype)
  x = _bn_relu(x, dtype)
  x = keras.layers.GlobalAveragePooling2D(dtype=dtype)(x)
  outputs = keras.layers.Dense(num_classes, dtype=dtype)(x)
  return keras.Model(inputs, outputs, name=f"wrn{depth}_{widen_factor}")
