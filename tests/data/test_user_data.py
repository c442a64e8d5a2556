"""One's own data (`data/user_data.py`): numpy and tf.data, and bad input."""
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.data import user_data


def _arrays(n=30, classes=4):
  rng = np.random.default_rng(0)
  return (rng.normal(size=(n, 3)).astype(np.float64),
          rng.integers(0, classes, n))


def _listed(examples):
  return [(x.numpy(), y.numpy()) for x, y in examples.dataset]


class ExamplesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("float32", "float64")
  def test_numpy_and_tf_data_give_the_same_examples(self, dtype):
    x, y = _arrays()
    from_numpy = user_data.examples((x, y), "train_data", dtype)
    examples = tf.data.Dataset.from_tensor_slices((x, y))
    for dataset in (examples, examples.batch(7)):  # Examples or batches.
      from_data = user_data.examples(dataset, "train_data", dtype)
      self.assertEqual(from_data.size, 30)
      for (xa, ya), (xb, yb) in zip(_listed(from_numpy), _listed(from_data)):
        self.assertEqual(xa.dtype, np.dtype(dtype))
        self.assertAllEqual(xa, xb)
        self.assertEqual(ya, yb)
    self.assertEqual(from_numpy.labels.maximum, y.max())
    self.assertTrue(from_numpy.labels.integral)

  def test_one_hot_and_column_labels_become_class_ids(self):
    x, y = _arrays()
    for labels in (np.eye(4)[y], y[:, None], y.astype(np.float32)):
      examples = user_data.class_ids(
          user_data.examples((x, labels), "train_data"), "train_data")
      ids = [int(b) for _, b in _listed(examples)]
      self.assertEqual(ids, list(y))
      self.assertEqual(user_data.num_classes_seen(examples),
                       4 if labels.ndim == 2 and labels.shape[1] == 4 else
                       y.max() + 1)

  def test_hold_out_is_fixed_and_disjoint(self):
    x, y = _arrays(n=200)
    examples = user_data.examples((x, y), "train_data")
    rest, held = user_data.hold_out(examples, 0.2)
    self.assertEqual(rest.size + held.size, 200)
    self.assertBetween(held.size, 20, 60)
    again = user_data.hold_out(examples, 0.2)[1]
    self.assertAllEqual([a for a, _ in _listed(held)],
                        [a for a, _ in _listed(again)])
    rest_rows = {tuple(a) for a, _ in _listed(rest)}
    self.assertFalse(rest_rows & {tuple(a) for a, _ in _listed(held)})


class BadDataTest(tf.test.TestCase, parameterized.TestCase):
  """Each mistake is a one-line UserError naming the argument."""

  def _error(self, data, pattern, labels=False):
    with self.assertRaisesRegex(errors.UserError, pattern) as caught:
      examples = user_data.examples(data, "train_data")
      if labels:
        user_data.class_ids(examples, "train_data")
    message = str(caught.exception)
    self.assertNotIn("\n", message)
    self.assertStartsWith(message, "train_data: ")

  def test_non_finite_x_numpy_and_tf_data(self):
    x, y = _arrays()
    x[3, 1] = np.nan
    self._error((x, y), "1 NaN or infinite")
    self._error(tf.data.Dataset.from_tensor_slices((x, y)).batch(8),
                "1 NaN or infinite")

  def test_rows_that_disagree(self):
    x, y = _arrays()
    self._error((x, y[:-1]), "one row per example")

  def test_not_a_pair(self):
    x, y = _arrays()
    self._error((x, y, y), "pair of arrays")
    self._error({"x": x, "y": y}, "got dict")
    self._error(tf.data.Dataset.from_tensor_slices(x), "\\(x, y\\) pairs")
    self._error(tf.data.Dataset.from_tensor_slices((x, y, y)),
                "\\(x, y\\) pairs")

  def test_strings_infinite_and_empty(self):
    x, y = _arrays()
    self._error((x.astype(str), y), "must be numbers")
    self._error(tf.data.Dataset.from_tensor_slices((x, y)).repeat(),
                "infinite")
    self._error((x[:0], y[:0]), "no example")

  @parameterized.parameters(
      (np.array([0.0, 1.5, 2.0]), "not whole"),
      (np.array([0, -1, 2]), "integer ids >= 0"),
      (np.zeros((3, 2, 2)), "shape \\[2, 2\\]"))
  def test_labels_that_are_not_classes(self, labels, pattern):
    self._error((np.zeros((3, 2), np.float32), labels), pattern, labels=True)


if __name__ == "__main__":
  tf.test.main()
