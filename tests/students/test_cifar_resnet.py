"""The CIFAR ResNet (students/cifar_resnet.py): its layouts agree.

WRN-28-10 and NASNet-A: test_wide_resnet.py and test_nasnet.py.
"""
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.students import cifar_resnet


def _cpu_runs_nchw_convolutions():
  """TensorFlow's CPU Conv2D takes NCHW only through oneDNN, which is on by
  default only on some CPUs (TF_ENABLE_ONEDNN_OPTS=1 forces it)."""
  try:
    tf.nn.conv2d(tf.zeros([1, 1, 3, 3]), tf.zeros([1, 1, 1, 1]), 1, "SAME",
                 data_format="NCHW")
  except tf.errors.UnimplementedError:
    return False
  return True


class CifarResNetLayoutTest(tf.test.TestCase):

  def test_channels_first_computes_the_same_function(self):
    """Same weights, NHWC inputs: the NCHW network (issue 13's lever) agrees."""
    if not _cpu_runs_nchw_convolutions():
      self.skipTest("this CPU's TensorFlow runs no NCHW Conv2D (oneDNN off "
                    "by default here; TF_ENABLE_ONEDNN_OPTS=1 turns it on)")
    keras.utils.set_random_seed(0)
    nhwc = cifar_resnet.cifar_resnet((8, 8, 3), depth=8, width=4)
    nchw = cifar_resnet.cifar_resnet((8, 8, 3), depth=8, width=4,
                                     data_format="channels_first")
    nchw.set_weights(nhwc.get_weights())
    x = np.random.default_rng(0).normal(size=(5, 8, 8, 3)).astype("float32")
    for training in (True, False):
      self.assertAllClose(nhwc(x, training=training),
                          nchw(x, training=training), atol=1e-5)
    self.assertAllClose(nhwc.non_trainable_weights, nchw.non_trainable_weights,
                        atol=1e-6)  # The moving statistics, per channel.

  def test_bad_data_format_is_a_user_error(self):
    with self.assertRaisesRegex(errors.UserError, "data_format"):
      cifar_resnet.cifar_resnet(data_format="NCHW")


if __name__ == "__main__":
  tf.test.main()
