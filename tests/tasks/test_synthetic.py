"""SyntheticImageTask (tasks/synthetic.py): its student, DLN and metrics.

Its random images (data/synthetic.py): tests/data/test_synthetic.py.
"""
import functools

import keras
import tensorflow as tf

from l2t_tf.students import cifar_resnet
from l2t_tf.tasks import synthetic


class SyntheticImageTaskTest(tf.test.TestCase):

  def test_builds_the_student_of_the_factory(self):
    keras.utils.set_random_seed(0)
    student = functools.partial(cifar_resnet.cifar_resnet, depth=8, width=2)
    task = synthetic.SyntheticImageTask((8, 8, 3), 4, student=student,
                                        dtype="float64", size=8, test_size=4)
    model, dln = task.build_student(), task.build_dln()
    self.assertEqual(model.input_shape, (None, 8, 8, 3))
    self.assertEqual(model.output_shape, (None, 4))
    self.assertEqual(task.name, "classification_synthetic")
    y, outputs = task.dummy_batch(model)
    self.assertEqual(dln(y, outputs).shape, ())
    self.assertEqual({w.dtype for w in model.weights + dln.weights},
                     {"float64"})
    metrics = task.evaluate(model, task.test_batches(3))
    self.assertBetween(metrics["test_accuracy"], 0.0, 1.0)
    self.assertEqual(list(metrics)[0], task.primary_metric)

  def test_default_student_is_the_cifar_resnet8(self):
    keras.utils.set_random_seed(0)
    model = synthetic.SyntheticImageTask().build_student()
    keras.utils.set_random_seed(0)
    reference = cifar_resnet.cifar_resnet(num_classes=10)
    self.assertEqual(model.count_params(), reference.count_params())
    for a, b in zip(model.weights, reference.weights):
      self.assertAllEqual(a, b)


if __name__ == "__main__":
  tf.test.main()
