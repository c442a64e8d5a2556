"""NASNet-A (Zoph et al. 2018) from `keras.applications`, random weights.

The paper's ImageNet student (Table 1, "NASNet-A", CE baseline 73.5 % top-1)
is taken to be NASNet-A Mobile, i.e. NASNet-A 4@1056 at 224x224 (5.3 M
parameters; 74.0 % top-1 in Zoph et al.), the variant whose published
accuracy matches the paper's baseline; the paper does not name the size.
NASNet-A Large (6@4032 at 331x331, 82.7 %) is `variant='large'`.

Built with `weights=None` (nothing is downloaded) and
`classifier_activation=None`, so the model returns logits. All of Keras'
NASNet convolutions are bias-free and followed by BatchNorm (design notes:
biased convolutions make unrolled graphs fail at random); it has no dropout.
The cell sizes can be overridden (tests use tiny ones).
"""
import contextlib

import gin
import keras
# The generic NASNet builder (NASNetMobile/Large call it with fixed cell
# sizes) is not exported by keras.applications; tests need tiny cells.
from keras.src.applications import nasnet as keras_nasnet

from l2t_tf import errors
from l2t_tf.students import batch_norm

# variant -> (penultimate_filters, num_blocks, stem_block_filters,
#             skip_reduction, default image size).
VARIANTS = {
    "mobile": (1056, 4, 32, False, 224),
    "large": (4032, 6, 96, True, 331),
}


@contextlib.contextmanager
def _default_dtype(dtype):
  """Builds keras.applications models (no dtype argument) in `dtype`."""
  if dtype is None:
    yield
    return
  old_floatx, old_policy = keras.config.floatx(), keras.config.dtype_policy()
  keras.config.set_floatx(str(dtype))
  keras.config.set_dtype_policy(str(dtype))
  try:
    yield
  finally:
    keras.config.set_floatx(old_floatx)
    keras.config.set_dtype_policy(old_policy)


@gin.configurable
def nasnet(input_shape=(224, 224, 3), num_classes=1000, variant="mobile",
           penultimate_filters=None, num_blocks=None, stem_block_filters=None,
           dtype=None):
  """NASNet-A returning logits [B, num_classes].

  Args:
    input_shape: (H, W, 3), H and W >= 32.
    num_classes: number of logits.
    variant: 'mobile' (NASNet-A 4@1056, the default) or 'large' (6@4032).
    penultimate_filters: overrides the variant's (a multiple of 96).
    num_blocks: overrides the number of normal cells per stack.
    stem_block_filters: overrides the stem width.
    dtype: float dtype of the model (None = Keras default).

  Returns:
    A `keras.Model` mapping [B, H, W, 3] to logits [B, num_classes].
  """
  if variant not in VARIANTS:
    raise errors.UserError(f"nasnet.variant must be one of {sorted(VARIANTS)}"
                           f", got {variant!r}.")
  filters, blocks, stem, skip_reduction, size = VARIANTS[variant]
  filters = penultimate_filters or filters
  if filters % 96:
    raise errors.UserError(f"nasnet.penultimate_filters must be a multiple of "
                           f"96, got {filters}.")
  with _default_dtype(dtype), batch_norm.exact_batch_norm():
    return keras_nasnet.NASNet(
        input_shape=tuple(input_shape), penultimate_filters=filters,
        num_blocks=num_blocks or blocks,
        stem_block_filters=stem_block_filters or stem,
        skip_reduction=skip_reduction, filter_multiplier=2, include_top=True,
        weights=None, classes=num_classes, default_size=size,
        classifier_activation=None, name=f"nasnet_a_{variant}")
