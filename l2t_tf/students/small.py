"""Small students of the cross-data-set benchmark (issue 23).

* `conv1d`: bias-free Conv1D + exact BatchNorm + ReLU blocks (strides 1, 2,
  2), global average pooling, a dense layer of logits: the 1-D analogue of
  `digits_cnn`, for MNIST-1D's [40, 1] signals.
* `mlp`: flatten, ReLU hidden layers, logits; no BatchNorm (tabular sets,
  and MNIST-1D's MLP row, where MLPs and CNNs differ clearly).

Both take `(input_shape, num_classes, dtype)` like every packaged student.
"""
import gin
import keras

from l2t_tf import checks
from l2t_tf.students import batch_norm


@gin.configurable
def conv1d(input_shape=(40, 1), num_classes=10, widths=(16, 32, 64),
           dtype=None):
  """[L, channels] -> conv(w0) -> conv(w1, /2) -> conv(w2, /2) -> GAP -> dense."""
  inputs = keras.Input(input_shape, dtype=dtype)
  x = inputs
  for i, width in enumerate(checks.integers("conv1d.widths", widths)):
    x = keras.layers.Conv1D(width, 3, strides=1 if i == 0 else 2,
                            padding="same", use_bias=False, dtype=dtype)(x)
    x = batch_norm.BatchNormalization(dtype=dtype)(x)
    x = keras.layers.ReLU(dtype=dtype)(x)
  x = keras.layers.GlobalAveragePooling1D(dtype=dtype)(x)
  outputs = keras.layers.Dense(num_classes, dtype=dtype)(x)
  return keras.Model(inputs, outputs, name="conv1d")


@gin.configurable
def mlp(input_shape, num_classes, widths=(64, 64), dtype=None):
  """Flatten -> Dense(w, relu) for w in widths -> Dense(num_classes)."""
  inputs = keras.Input(input_shape, dtype=dtype)
  x = keras.layers.Flatten(dtype=dtype)(inputs)
  for width in checks.integers("mlp.widths", widths):
    x = keras.layers.Dense(width, activation="relu", dtype=dtype)(x)
  outputs = keras.layers.Dense(num_classes, dtype=dtype)(x)
  return keras.Model(inputs, outputs, name="mlp")
