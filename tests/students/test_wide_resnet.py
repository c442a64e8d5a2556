"""WRN-28-10 (students/wide_resnet.py): size, convolutions, logits."""
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.students import wide_resnet

CONV_TYPES = (keras.layers.Conv2D, keras.layers.SeparableConv2D,
              keras.layers.DepthwiseConv2D)


def _biased_convs(model):
  return [layer.name for layer in model.layers
          if isinstance(layer, CONV_TYPES) and layer.use_bias]


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


if __name__ == "__main__":
  tf.test.main()
