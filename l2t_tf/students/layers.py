"""Layers shared by the CIFAR students (`cifar_resnet`, `wide_resnet`)."""
import keras


def conv(filters, strides, dtype, data_format=None, kernel=3):
  """A bias-free "same" convolution with He-normal kernels.

  Every such convolution precedes a BatchNorm, so it has no bias (design
  notes: biased convolutions make unrolled graphs fail at random).

  Args:
    filters: output channels.
    strides: the stride of both spatial axes.
    dtype: the layer's dtype (None = Keras default).
    data_format: "channels_last" ([B, H, W, C]), "channels_first"
      ([B, C, H, W]) or None (Keras' `image_data_format`).
    kernel: the square kernel's size.

  Returns:
    A `keras.layers.Conv2D`, not yet built.
  """
  return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same",
                             use_bias=False, kernel_initializer="he_normal",
                             data_format=data_format, dtype=dtype)
