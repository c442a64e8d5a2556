"""PSPNet (Zhao et al., "Pyramid Scene Parsing Network", CVPR 2017).

Dilated ResNet backbone with output stride 8 (stages conv4 and conv5 keep
their resolution and dilate their 3x3 convolutions by 2 and 4), the pyramid
pooling module over bins 1, 2, 3, 6, a main head on its output and an
auxiliary head on conv4 (the third residual stage, Sec. 3.3 of the paper,
weight 0.4 in the loss). Both heads' logits are upsampled to the input size:
the model maps x [B, H, W, 3] to [main_logits, aux_logits], each
[B, H, W, num_classes].

Every convolution is bias-free (design notes: biased convolutions make
unrolled graphs fail at random); the ones before BatchNorm lose nothing.
Resizing and adaptive pooling are written as products with constant
interpolation matrices: `tf.image.resize` has no second derivative (its
gradient's gradient is silently None), which the hypergradient needs.

`rematerialize=True` wraps the stem and every bottleneck block in
`remat.Rematerialized`: only block boundaries are kept, in the gradient and
in the hypergradient's Hessian-vector products (the memory lever for
473 x 473 crops; same values; each block's forward runs up to three times).

Layer names follow `keras.applications.ResNet50/101`, so ImageNet weights in
that format load from a local file (`backbone_weights`); conv biases of that
file are folded into the BatchNorm moving means. Nothing is downloaded.
"""
import functools
import os

import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import checks
from l2t_tf import errors
from l2t_tf.students import batch_norm
from l2t_tf.students import remat

# Bottleneck blocks per residual stage (conv2..conv5). 14 is a tiny test net.
BLOCKS = {14: (1, 1, 1, 1), 26: (2, 2, 2, 2), 50: (3, 4, 6, 3),
          101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_BN_EPSILON = 1.001e-5  # As keras.applications (their weights expect it).


def adaptive_pool_matrix(in_size, bins):
  """[bins, in_size] averaging matrix of adaptive average pooling.

  Bin i averages inputs floor(i * n / b) .. ceil((i + 1) * n / b) - 1, as
  PyTorch's AdaptiveAvgPool2d used by the PSPNet reference code.
  """
  m = np.zeros((bins, in_size), np.float64)
  for i in range(bins):
    start = (i * in_size) // bins
    end = -((-(i + 1) * in_size) // bins)
    m[i, start:end] = 1.0 / (end - start)
  return m


def bilinear_matrix(in_size, out_size):
  """[out_size, in_size] bilinear interpolation matrix, align_corners=True."""
  m = np.zeros((out_size, in_size), np.float64)
  scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
  for i in range(out_size):
    src = i * scale
    lo = min(int(np.floor(src)), in_size - 1)
    hi = min(lo + 1, in_size - 1)
    frac = src - lo
    m[i, lo] += 1.0 - frac
    m[i, hi] += frac
  return m


class SeparableResize(keras.layers.Layer):
  """x [B, H, W, C] -> Mh x Mw^T per channel: resizing or adaptive pooling.

  `mode="bilinear"` upsamples to `size` (align_corners=True, as PSPNet);
  `mode="adaptive_pool"` average-pools to `size` bins. Linear in x, so its
  derivatives of every order exist.
  """

  def __init__(self, size, mode="bilinear", **kwargs):
    super().__init__(**kwargs)
    self.size, self.mode = tuple(int(s) for s in size), mode

  def _matrix(self, in_size, out_size):
    if self.mode == "bilinear":
      return bilinear_matrix(in_size, out_size)
    return adaptive_pool_matrix(in_size, out_size)

  def call(self, x):
    mh = tf.constant(self._matrix(x.shape[1], self.size[0]), x.dtype)
    mw = tf.constant(self._matrix(x.shape[2], self.size[1]), x.dtype)
    return tf.einsum("ih,bhwc,jw->bijc", mh, x, mw)

  def compute_output_shape(self, input_shape):
    return (input_shape[0],) + self.size + (input_shape[-1],)

  def get_config(self):
    config = super().get_config()
    config.update(size=self.size, mode=self.mode)
    return config


def _conv_bn(x, filters, kernel, name, dtype, strides=1, dilation=1,
             relu=True):
  """Bias-free conv -> BN (-> ReLU), named `name`_conv / `name`_bn."""
  x = keras.layers.Conv2D(
      filters, kernel, strides=strides, dilation_rate=dilation,
      padding="same", use_bias=False, kernel_initializer="he_normal",
      name=f"{name}_conv", dtype=dtype)(x)
  x = batch_norm.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}_bn",
                                      dtype=dtype)(x)
  return keras.layers.ReLU(name=f"{name}_relu", dtype=dtype)(x) if relu else x


def _bottleneck(x, filters, strides, dilation, name, dtype):
  """ResNet v1 bottleneck (stride on the first 1x1, as keras.applications)."""
  shortcut = x
  if strides != 1 or x.shape[-1] != 4 * filters:
    shortcut = _conv_bn(x, 4 * filters, 1, f"{name}_0", dtype, strides,
                        relu=False)
  y = _conv_bn(x, filters, 1, f"{name}_1", dtype, strides)
  y = _conv_bn(y, filters, 3, f"{name}_2", dtype, dilation=dilation)
  y = _conv_bn(y, 4 * filters, 1, f"{name}_3", dtype, relu=False)
  y = keras.layers.Add(name=f"{name}_add", dtype=dtype)([shortcut, y])
  return keras.layers.ReLU(name=f"{name}_out", dtype=dtype)(y)


def _stem(x, width, dtype):
  """7x7/2 conv-BN-ReLU and 3x3/2 max pooling (output stride 4)."""
  x = keras.layers.ZeroPadding2D(3, name="conv1_pad", dtype=dtype)(x)
  x = keras.layers.Conv2D(width, 7, strides=2, use_bias=False,
                          kernel_initializer="he_normal", name="conv1_conv",
                          dtype=dtype)(x)
  x = batch_norm.BatchNormalization(epsilon=_BN_EPSILON, name="conv1_bn",
                                      dtype=dtype)(x)
  x = keras.layers.ReLU(name="conv1_relu", dtype=dtype)(x)
  x = keras.layers.ZeroPadding2D(1, name="pool1_pad", dtype=dtype)(x)
  return keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool",
                                   dtype=dtype)(x)


def _maybe_remat(build, x, name, dtype, rematerialize):
  """build(x) inline, or as a sub-model wrapped in `remat.Rematerialized`."""
  if not rematerialize:
    return build(x)
  inputs = keras.Input(tuple(x.shape[1:]), dtype=dtype)
  block = keras.Model(inputs, build(inputs), name=name)
  return remat.Rematerialized(block, name=f"{name}_remat", dtype=dtype)(x)


def dilated_resnet(x, depth, width, dtype, rematerialize=False):
  """Output-stride-8 ResNet; returns (conv4 features, conv5 features)."""
  x = _maybe_remat(lambda t: _stem(t, width, dtype), x, "conv1", dtype,
                   rematerialize)
  # (stride, dilation) of conv2..conv5: output stride 8 (paper Sec. 3.3).
  plan = ((1, 1), (2, 1), (1, 2), (1, 4))
  features = []
  for stage, (blocks, (strides, dilation)) in enumerate(
      zip(BLOCKS[depth], plan)):
    for block in range(blocks):
      name = f"conv{stage + 2}_block{block + 1}"
      build = functools.partial(
          _bottleneck, filters=width * 2**stage,
          strides=strides if block == 0 else 1, dilation=dilation, name=name,
          dtype=dtype)
      x = _maybe_remat(build, x, name, dtype, rematerialize)
    features.append(x)
  return features[2], features[3]


def _layer(model, name):
  """The layer called `name` in `model` or in one of its sub-models."""
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if layer.name == name:
      return layer
  raise ValueError(f"no layer {name!r} in {model.name}")


def pyramid_pooling(x, bins, dtype):
  """PPM: pool to b x b, 1x1 conv to C/4, upsample, concat with x."""
  size = x.shape[1:3]
  branches = [x]
  for b in bins:
    y = SeparableResize((b, b), "adaptive_pool", name=f"ppm{b}_pool",
                        dtype=dtype)(x)
    y = _conv_bn(y, x.shape[-1] // 4, 1, f"ppm{b}", dtype)
    branches.append(SeparableResize(size, name=f"ppm{b}_up", dtype=dtype)(y))
  return keras.layers.Concatenate(name="ppm_concat", dtype=dtype)(branches)


def _head(x, filters, num_classes, dropout, out_size, name, dtype):
  """3x3 conv-BN-ReLU, dropout, 1x1 classifier, bilinear upsampling."""
  x = _conv_bn(x, filters, 3, f"{name}_fuse", dtype)
  x = keras.layers.Dropout(dropout, name=f"{name}_dropout", dtype=dtype)(x)
  x = keras.layers.Conv2D(num_classes, 1, use_bias=False,
                          name=f"{name}_classifier", dtype=dtype)(x)
  return SeparableResize(out_size, name=f"{name}_logits", dtype=dtype)(x)


def load_backbone_weights(model, path, depth, width):
  """Copies keras.applications ResNet ImageNet weights from local `path`."""
  if not os.path.isfile(path):
    raise errors.UserError(
        f"pspnet.backbone_weights: no such file {path!r}. Give the local "
        f"keras.applications ResNet{depth} 'notop' weights file (e.g. "
        f"resnet{depth}_weights_tf_dim_ordering_tf_kernels_notop.h5) or None; "
        f"nothing is downloaded.")
  apps = {50: keras.applications.ResNet50, 101: keras.applications.ResNet101,
          152: keras.applications.ResNet152}
  if depth not in apps or width != 64:
    raise errors.UserError(f"pspnet: ImageNet weights exist for depth 50, 101, "
                           f"152 at width 64, not depth={depth}, "
                           f"width={width}.")
  try:
    reference = apps[depth](include_top=False, weights=path,
                            input_shape=(None, None, 3))
  except (ValueError, OSError) as e:
    raise errors.UserError(
        f"pspnet.backbone_weights = {path!r} does not hold keras.applications "
        f"ResNet{depth} 'notop' weights (pspnet.depth = {depth}): "
        f"{checks.first_line(e)}") from e
  for layer in reference.layers:
    if not layer.name.endswith("_conv"):
      continue
    kernel, bias = layer.get_weights()
    _layer(model, layer.name).set_weights([kernel])
    bn = _layer(model, layer.name[:-len("_conv")] + "_bn")
    gamma, beta, mean, var = reference.get_layer(bn.name).get_weights()
    bn.set_weights([gamma, beta, mean - bias, var])  # BN(conv + b) folded.


@gin.configurable
def pspnet(input_shape=(473, 473, 3), num_classes=21, depth=50, width=64,
           bins=(1, 2, 3, 6), dropout=0.1, backbone_weights=None,
           rematerialize=False, dtype=None):
  """PSPNet returning [main_logits, aux_logits], each [B, H, W, classes].

  Args:
    input_shape: (H, W, 3); static, the crop size (473 in the paper).
    num_classes: 21 for VOC.
    depth: backbone depth, one of `BLOCKS` (50 default, 101 as the paper,
      14 is a one-block-per-stage test net).
    width: channels of the first stage (64 standard; e.g. 8 for tests).
    bins: pyramid pooling bin sizes.
    dropout: dropout rate before both classifiers.
    backbone_weights: optional local keras.applications ResNet weight file.
    rematerialize: recompute the backbone's blocks in the backward passes
      (first and second order) instead of storing their activations.
    dtype: Keras dtype policy of every layer.
  """
  if depth not in BLOCKS:
    raise errors.UserError(f"pspnet.depth must be one of {sorted(BLOCKS)}, "
                           f"got {depth}.")
  inputs = keras.Input(input_shape, dtype=dtype)
  conv4, conv5 = dilated_resnet(inputs, depth, width, dtype, rematerialize)
  size = tuple(input_shape[:2])
  main = _head(pyramid_pooling(conv5, bins, dtype), width * 8, num_classes,
               dropout, size, "main", dtype)
  aux = _head(conv4, width * 4, num_classes, dropout, size, "aux", dtype)
  model = keras.Model(inputs, [main, aux], name=f"pspnet{depth}_w{width}")
  if backbone_weights:
    load_backbone_weights(model, backbone_weights, depth, width)
  return model
