"""The one place that chooses the `tf.distribute` strategy (tf-agents style).

`default`: one device. `mirrored`: all local GPUs (or `devices`), e.g. two
logical CPUs in tests. `multi_worker` will add MultiWorkerMirroredStrategy
(design notes Sec. 5) here, created before any other TensorFlow op.
"""
import gin
import tensorflow as tf

from l2t_tf import errors

STRATEGIES = ("default", "mirrored")


@gin.configurable
def get_strategy(name="default", devices=None):
  """Returns the strategy `name` ('default' or 'mirrored')."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy(devices=devices)
  raise errors.UserError(f"get_strategy.name must be one of {STRATEGIES}, got "
                   f"{name!r}.")
