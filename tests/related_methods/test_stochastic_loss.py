"""SLF (related_methods/stochastic_loss.py): base losses, selection, seeds."""
import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from l2t_tf.related_methods import stochastic_loss
import gradcheck

DTYPES = (("float32", tf.float32), ("float64", tf.float64))


class StochasticLossTest(gradcheck.GradientCheck, parameterized.TestCase):

  @parameterized.named_parameters(*DTYPES)
  def test_base_losses_closed_form(self, dtype):
    y = tf.constant([0])
    z = tf.constant([[math.log(2.), 0.]], dtype)  # p = (2/3, 1/3)
    p_y = 2. / 3.
    self.assertAllClose(stochastic_loss.cross_entropy(y, z), [-math.log(p_y)])
    self.assertAllClose(stochastic_loss.squared_error(y, z), [2. / 9.])
    self.assertAllClose(stochastic_loss.hinge(y, z), [1. - math.log(2.)])
    self.assertAllClose(stochastic_loss.hinge(y, 2. * z), [0.])
    self.assertAllClose(stochastic_loss.focal(y, z),
                        [-(1. / 9.) * math.log(p_y)])

  @parameterized.named_parameters(*DTYPES)
  def test_selection_with_given_noise(self, dtype):
    layer = stochastic_loss.StochasticLoss(dtype=dtype)
    y = tf.constant([0, 1])
    z = tf.constant([[1., 2., 0.], [0., 1., 3.]], dtype)
    gumbel = tf.constant([[1., 0., 0., 0.], [0., 0., 2., 0.]], dtype)
    value = layer(y, z, gumbel=gumbel)
    expected = 0.5 * (tf.reduce_mean(stochastic_loss.cross_entropy(y, z))
                      + tf.reduce_mean(stochastic_loss.hinge(y, z)))
    self.assertAllClose(value, expected)
    layer.selection_logits.assign([[0., 0., 0., 1.], [0., 0., 0., 1.]])
    self.assertAllClose(layer(y, z, training=False),
                        tf.reduce_mean(stochastic_loss.focal(y, z)))

  def test_noise_is_seeded(self):
    y, z = tf.constant([0, 1]), tf.constant([[1., 2., 0.], [0., 1., 3.]])
    first = [stochastic_loss.StochasticLoss(seed=3)(y, z) for _ in range(2)]
    self.assertAllClose(first[0], first[1])
    layer = stochastic_loss.StochasticLoss(seed=3, num_selections=8)
    self.assertAllClose(layer(y, z), layer(y, z))  # Same batch, same draw.
    batches = [tf.constant([a, b]) for a in range(3) for b in range(3)]
    draws = {float(layer(batch, z)) for batch in batches}  # Fresh per batch.
    self.assertGreater(len(draws), 3)

  def test_gradients_float64(self):
    y = tf.constant([0, 2])
    z = np.array([[0.3, -0.2, 0.1], [0.5, 0.4, -1.]])
    v = np.array([[0.2, -0.1, 0.4, 0.], [0.3, 0.1, -0.2, 0.5]])
    gumbel = tf.constant([[0.1, 0.5, -0.3, 0.2], [1., -1., 0.3, 0.]],
                         tf.float64)
    names = tuple(stochastic_loss.BASE_LOSSES)

    def loss(logits, selection, hard):
      weights = stochastic_loss.selection_weights(selection, gumbel, 0.7, hard)
      return stochastic_loss.stochastic_loss(y, logits, weights, names)
    self.assert_gradient_matches(lambda t: loss(t, tf.constant(v), True), z)
    self.assert_gradient_matches(lambda t: loss(tf.constant(z), t, False), v)
    # Straight-through: the hard selection's gradient is the soft one's.
    grads = []
    for hard in (True, False):
      vt = tf.constant(v)
      with tf.GradientTape() as tape:
        tape.watch(vt)
        value = loss(tf.constant(z), vt, hard)
      grads.append(tape.gradient(value, vt))
    self.assertAllClose(grads[0], grads[1])


if __name__ == "__main__":
  tf.test.main()
