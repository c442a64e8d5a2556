"""CIFAR ResNet layouts, WRN-28-10 and NASNet-A: sizes, convolutions, logits."""
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.students import cifar_resnet
from l2t_tf.students import nasnet
from l2t_tf.students import wide_resnet

CONV_TYPES = (keras.layers.Conv2D, keras.layers.SeparableConv2D,
              keras.layers.DepthwiseConv2D)


def _biased_convs(model):
  return [layer.name for layer in model.layers
          if isinstance(layer, CONV_TYPES) and layer.use_bias]


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


class WideResNetTest(tf.test.TestCase):

  def test_wrn_28_10_has_the_published_size_and_no_conv_bias(self):
    model = wide_resnet.wide_resnet(num_classes=10)
    # Zagoruyko & Komodakis 2016, Table 1: WRN-28-10 has 36.5 M parameters.
    self.assertBetween(model.count_params(), 36.4e6, 36.6e6)
    self.assertEqual(_biased_convs(model), [])

  def test_tiny_wrn_returns_logits(self):
    model = wide_resnet.wide_resnet((16, 16, 3), 7, depth=10, widen_factor=1,
                                    base_width=4)
    x = np.random.default_rng(0).normal(size=(3, 16, 16, 3)).astype("float32")
    logits = model(x, training=False)
    self.assertEqual(logits.shape, (3, 7))
    # Logits, not probabilities: rows need not sum to one.
    self.assertNotAllClose(tf.reduce_sum(logits, -1), tf.ones([3]))

  def test_bad_depth_is_a_user_error(self):
    with self.assertRaisesRegex(errors.UserError, "wide_resnet.depth"):
      wide_resnet.wide_resnet(depth=27)


class NASNetTest(tf.test.TestCase):

  def test_mobile_is_keras_nasnet_a_4_at_1056_with_logits(self):
    model = nasnet.nasnet()
    # = keras.applications.NASNetMobile(weights=None).count_params() (5.3 M,
    # Zoph et al. 2018, Table 2: NASNet-A 4 @ 1056).
    self.assertEqual(model.count_params(), 5_326_716)
    self.assertEqual(model.input_shape, (None, 224, 224, 3))
    self.assertEqual(model.output_shape, (None, 1000))
    self.assertIs(model.get_layer("predictions").activation,
                  keras.activations.linear)
    self.assertEqual(_biased_convs(model), [])

  def test_tiny_float64(self):
    model = nasnet.nasnet((32, 32, 3), 5, penultimate_filters=96,
                          num_blocks=1, stem_block_filters=8, dtype="float64")
    logits = model(np.zeros((2, 32, 32, 3)), training=False)
    self.assertEqual(logits.shape, (2, 5))
    self.assertEqual(logits.dtype, tf.float64)
    self.assertEqual(keras.config.floatx(), "float32")  # Restored.

  def test_bad_filters_are_a_user_error(self):
    with self.assertRaisesRegex(errors.UserError, "penultimate_filters"):
      nasnet.nasnet(penultimate_filters=100)


if __name__ == "__main__":
  tf.test.main()
