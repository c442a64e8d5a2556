"""The benchmark's data sets (`data/benchmark_sets.py`) and students."""
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.data import benchmark_sets
from l2t_tf.students import small

# (examples, features) of the train and test splits, classes.
SHAPES = {"digits": ((1433, 8, 8, 1), (364, 8, 8, 1), 10),
          "mnist1d": ((4000, 40, 1), (1000, 40, 1), 10),
          "breast_cancer": ((454, 30), (115, 30), 2),
          "segment": ((1667, 18), (419, 18), 7)}


class BenchmarkSetsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*benchmark_sets.NAMES)
  def test_shapes_classes_and_a_fixed_disjoint_split(self, name):
    x, y, x_test, y_test = benchmark_sets.load(name)
    train_shape, test_shape, classes = SHAPES[name]
    self.assertEqual(x.shape, train_shape)
    self.assertEqual(x_test.shape, test_shape)
    self.assertEqual(set(np.unique(y)), set(range(classes)))
    self.assertEqual(x.dtype, np.float32)
    self.assertTrue(np.all(np.isfinite(x)))
    again = benchmark_sets.load(name)
    self.assertAllEqual(again[2], x_test)  # The same test set every time.
    rows = {r.tobytes() for r in x.reshape(len(x), -1)}
    test_rows = {r.tobytes() for r in x_test.reshape(len(x_test), -1)}
    self.assertFalse(rows & test_rows)

  @parameterized.parameters("breast_cancer", "segment")
  def test_tabular_features_are_standardised_on_train(self, name):
    x = benchmark_sets.load(name)[0]
    self.assertAllClose(x.mean(0), np.zeros(x.shape[1]), atol=1e-4)
    self.assertAllClose(x.std(0), np.ones(x.shape[1]), atol=1e-3)

  def test_unknown_set(self):
    with self.assertRaisesRegex(errors.UserError, "must be one of"):
      benchmark_sets.load("mnist")

  @parameterized.parameters("float32", "float64")
  def test_students_return_logits(self, dtype):
    for model in (small.conv1d((40, 1), 10, dtype=dtype),
                  small.mlp((30,), 2, dtype=dtype)):
      x = np.zeros((3,) + tuple(model.input_shape[1:]), dtype)
      self.assertEqual(model(x).shape, (3, model.output_shape[-1]))
      self.assertEqual(model(x).dtype, dtype)


if __name__ == "__main__":
  tf.test.main()
