"""tools/dln_gradient_ratio.py (issue 23): the DLN's gradient against CE's."""
import tensorflow as tf

from l2t_tf.experiments import dln_gradient_ratio


class DLNGradientRatioTest(tf.test.TestCase):

  def test_scale_two_doubles_the_ratio(self):
    """On breast_cancer (42 steps): ~0.5 at scale 1, ~1 at scale 2."""
    args = dln_gradient_ratio.parse_args(["--epochs=1", "--every=5"])
    one = dln_gradient_ratio.run("breast_cancer/mlp", 1.0, args)
    two = dln_gradient_ratio.run("breast_cancer/mlp", 2.0, args)
    self.assertBetween(one["norm_ratio_first"], 0.4, 0.6)
    self.assertBetween(two["norm_ratio_first"], 0.8, 1.2)
    self.assertGreater(two["cosine_mean"], 0.8)
    for key in ("heldout_accuracy_frozen_dln", "heldout_accuracy_ce"):
      self.assertBetween(two[key], 0.5, 1.0)


if __name__ == "__main__":
  tf.test.main()
