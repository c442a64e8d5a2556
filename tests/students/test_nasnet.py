"""NASNet-A (students/nasnet.py): size, convolutions, logits, float64."""
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.students import nasnet

CONV_TYPES = (keras.layers.Conv2D, keras.layers.SeparableConv2D,
              keras.layers.DepthwiseConv2D)


def _biased_convs(model):
  return [layer.name for layer in model.layers
          if isinstance(layer, CONV_TYPES) and layer.use_bias]


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
