"""The Table 1 baselines, each a gin binding away (l2t_tf/related_methods).

The package's promise: each baseline loss binds into a classification task.
Each loss's own tests: tests/related_methods/test_<module>.py.
"""
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from l2t_tf import config
from l2t_tf.tasks import classification


class GinTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("smooth_01", ["ClassificationTask.fixed_loss = @smooth_01_loss",
                     "smooth_01_loss.sharpness = 2.0"]),
      ("robust_fixed", ["ClassificationTask.fixed_loss = "
                        "@general_robust_loss"]),
      ("robust_adaptive", ["ClassificationTask.fixed_loss = "
                           "@adaptive_robust_loss()",
                           "adaptive_robust_loss.per_class = False"]),
      ("slf", ["ClassificationTask.fixed_loss = "
               "@stochastic_loss_function()",
               "stochastic_loss_function.seed = 0"]),
      ("large_margin", ["ClassificationTask.fixed_loss = "
                        "@large_margin_softmax_loss",
                        "ClassificationTask.student = @large_margin_student",
                        "large_margin_student.margin = 2"]))
  def test_binding_into_classification_task(self, bindings):
    config.parse(gin_bindings=bindings)
    try:
      task = classification.ClassificationTask(dataset="digits")
      student = task.build_student()
      x = tf.random.stateless_normal([3, 8, 8, 1], seed=[1, 2])
      y = tf.constant([0, 5, 9])
      loss = task.fixed_loss(y, student(x, training=True))
      self.assertEqual(loss.shape, ())
      self.assertTrue(np.isfinite(loss.numpy()))
      self.assertEqual(student(x).shape, (3, 10))
    finally:
      config.parse()


if __name__ == "__main__":
  tf.test.main()
