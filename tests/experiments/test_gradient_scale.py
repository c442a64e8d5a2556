"""tools/gradient_scale.py: each loss's student gradient against CE's."""
import tensorflow as tf

from l2t_tf.experiments import gradient_scale


class GradientScaleTest(tf.test.TestCase):

  def test_ce_against_itself_and_the_squashed_ala_loss(self):
    ce = gradient_scale.measure("digits_ce.gin", batches=2)
    self.assertAllClose(ce["norm_ratio"], 1.0)
    self.assertAllClose(ce["cosine"], 1.0)
    self.assertAllClose(ce["loss"], ce["cross_entropy"])
    # ALA at Phi = I is -sigmoid(log p_y): per example CE's gradient times
    # sigmoid'(log p_y) ~ sigmoid'(log 0.1) ~ 0.08 for an untrained student.
    ala = gradient_scale.measure("digits_ala.gin", batches=2)
    self.assertBetween(ala["norm_ratio"], 0.04, 0.12)
    self.assertGreater(ala["cosine"], 0.8)


if __name__ == "__main__":
  tf.test.main()
