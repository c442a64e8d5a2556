"""tools/dln_logit_gradient.py (issue 23): closed forms of its three numbers."""
import keras
import numpy as np
import tensorflow as tf

from l2t_tf.experiments import dln_logit_gradient


class DlnLogitGradientTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(0)
    self.y = rng.randint(0, 5, size=40).astype(np.int32)
    self.logits = rng.normal(size=(40, 5))
    self.ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

  def test_per_example_gradient_of_ce_is_softmax_minus_one_hot(self):
    g = dln_logit_gradient.per_example_gradients(self.ce, self.y, self.logits)
    p = np.exp(self.logits) / np.exp(self.logits).sum(1, keepdims=True)
    self.assertAllClose(g, p - np.eye(5)[self.y], atol=1e-6)

  def test_ce_against_itself_and_its_opposite(self):
    g = dln_logit_gradient.per_example_gradients(self.ce, self.y, self.logits)
    same = dln_logit_gradient.compare(3.0 * g, g, self.y, self.logits)
    self.assertAllClose(same["norm_ratio"], 3.0)
    self.assertAllClose(same["cosine"], 1.0)
    self.assertEqual(same["improper"], 0.0)  # CE always raises the margin.
    opposite = dln_logit_gradient.compare(-g, g, self.y, self.logits)
    self.assertAllClose(opposite["cosine"], -1.0)
    self.assertEqual(opposite["improper"], 1.0)


if __name__ == "__main__":
  tf.test.main()
