"""A small bias-free conv + BatchNorm student for digits (8x8x1)."""
import gin
import keras

from l2t_tf import checks
from l2t_tf.students import batch_norm


def conv_bn_relu(x, filters, strides=1, dtype=None):
  """3x3 conv without bias (design notes: biased convs break unrolled graphs)."""
  x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same",
                          use_bias=False, dtype=dtype)(x)
  x = batch_norm.BatchNormalization(dtype=dtype)(x)
  return keras.layers.ReLU(dtype=dtype)(x)


@gin.configurable
def digits_cnn(input_shape=(8, 8, 1), num_classes=10, widths=(16, 32, 64),
               dtype=None):
  """conv(w0) -> conv(w1, /2) -> conv(w2, /2) -> GAP -> dense; logits out."""
  inputs = keras.Input(input_shape, dtype=dtype)
  x = inputs
  for i, w in enumerate(checks.integers("digits_cnn.widths", widths)):
    x = conv_bn_relu(x, w, strides=1 if i == 0 else 2, dtype=dtype)
  x = keras.layers.GlobalAveragePooling2D(dtype=dtype)(x)
  outputs = keras.layers.Dense(num_classes, dtype=dtype)(x)
  return keras.Model(inputs, outputs, name="digits_cnn")
