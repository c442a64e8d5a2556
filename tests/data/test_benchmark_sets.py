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


class ConditionsTest(tf.test.TestCase, parameterized.TestCase):
  """Label noise, class imbalance and the trusted subset (issue 23, 4)."""

  @parameterized.parameters((1433, 0.2, 10), (454, 0.4, 2), (7, 0.5, 3))
  def test_symmetric_noise_flips_exactly_that_many_to_another_class(
      self, n, fraction, classes):
    y = np.random.RandomState(0).randint(0, classes, n).astype(np.int32)
    noisy, flipped = benchmark_sets.symmetric_noise(y, fraction, classes, 3)
    self.assertEqual(int(flipped.sum()), int(round(fraction * n)))
    self.assertTrue(np.all(noisy[flipped] != y[flipped]))
    self.assertAllEqual(noisy[~flipped], y[~flipped])
    self.assertTrue(np.all((noisy >= 0) & (noisy < classes)))
    self.assertEqual(noisy.dtype, y.dtype)
    again = benchmark_sets.symmetric_noise(y, fraction, classes, 3)
    self.assertAllEqual(again[0], noisy)  # A function of the seed.
    if n > 100:
      other = benchmark_sets.symmetric_noise(y, fraction, classes, 4)[1]
      self.assertNotAllEqual(other, flipped)

  def test_symmetric_noise_draws_the_new_class_uniformly(self):
    y = np.repeat(np.arange(4), 6000)
    noisy, flipped = benchmark_sets.symmetric_noise(y, 1.0, 4, 0)
    self.assertTrue(np.all(flipped))
    pairs = np.zeros((4, 4))
    np.add.at(pairs, (y, noisy), 1)
    self.assertAllEqual(np.diag(pairs), np.zeros(4))
    off = pairs[~np.eye(4, dtype=bool)]
    self.assertAllClose(off / 2000, np.ones(12), atol=0.1)  # 6000 / 3 each.

  def test_long_tailed_counts_are_exact_and_pairs_kept(self):
    rng = np.random.RandomState(1)
    y = rng.permutation(np.repeat(np.arange(10), 100))
    x = np.stack([np.arange(1000), y], axis=1)  # Row i: (i, its label).
    xl, yl = benchmark_sets.long_tailed(x, y, 10, seed=5)
    expected = [100, 77, 60, 46, 36, 28, 22, 17, 13, 10]  # 100 * 10^(-c/9)
    self.assertAllEqual(np.bincount(yl, minlength=10), expected)
    self.assertAllEqual(xl[:, 1], yl)  # Each x with its own label.
    self.assertAllEqual(xl[:, 0], np.sort(xl[:, 0]))  # Original order.
    self.assertLen(np.unique(xl[:, 0]), sum(expected))  # No repeats.
    again = benchmark_sets.long_tailed(x, y, 10, seed=5)
    self.assertAllEqual(again[0], xl)
    self.assertNotAllEqual(benchmark_sets.long_tailed(x, y, 10, seed=6)[0],
                           xl)

  def test_long_tailed_caps_a_class_at_what_it_has(self):
    y = np.array([0] * 50 + [1] * 3 + [2] * 40)
    # Wanted: 50, round(50 / sqrt(10)) = 16 (has 3), 5.
    self.assertAllEqual(benchmark_sets.long_tailed_counts(y, 10), [50, 3, 5])
    with self.assertRaisesRegex(errors.UserError, "ratio >= 1"):
      benchmark_sets.long_tailed_counts(y, 0.5)

  def test_balanced_subset(self):
    y = np.repeat(np.arange(7), [30, 20, 25, 30, 30, 12, 40])
    mask = benchmark_sets.balanced_subset(y, 40, 7, seed=2)
    self.assertEqual(int(mask.sum()), 40)  # 5 each, one more for 0..4.
    self.assertAllEqual(np.bincount(y[mask], minlength=7),
                        [6, 6, 6, 6, 6, 5, 5])
    with self.assertRaisesRegex(errors.UserError, "class 5; the training "
                                "split has 12"):
      benchmark_sets.balanced_subset(y, 91, 7, seed=2)

  @parameterized.parameters("noise20", "noise40", "imbalance10", "clean")
  def test_corrupt_sets_the_trusted_subset_aside_before_corrupting(
      self, condition):
    x, y, x_test, y_test = benchmark_sets.load("digits")
    test_before = (x_test.copy(), y_test.copy())
    out = benchmark_sets.corrupt(x, y, condition, 10, seed=1, trusted=100)
    rows = {r.tobytes(): i for i, r in enumerate(x.reshape(len(x), -1))}
    index = lambda a: np.array([rows[r.tobytes()] for r in a.reshape(
        len(a), -1)])
    trusted, rest = index(out.x_trusted), index(out.x)
    # The trusted set: clean (true labels), 10 per class, not trained on.
    self.assertAllEqual(out.y_trusted, y[trusted])
    self.assertAllEqual(np.bincount(out.y_trusted, minlength=10),
                        np.full(10, 10))
    self.assertEmpty(set(trusted) & set(rest))
    self.assertAllEqual(out.y_true, y[rest])
    n = len(y) - 100
    if condition.startswith("noise"):
      self.assertLen(rest, n)
      fraction = int(condition[5:]) / 100
      self.assertEqual(int(out.flipped.sum()), int(round(fraction * n)))
      self.assertEqual(int(np.sum(out.y != out.y_true)),
                       int(round(fraction * n)))
    elif condition == "imbalance10":
      counts = np.bincount(out.y, minlength=10)
      self.assertEqual(counts[0], np.sum(y == 0) - 10)  # Class 0: all.
      self.assertEqual(counts[9], int(round(counts[0] / 10)))
      self.assertAllEqual(out.y, out.y_true)
      self.assertFalse(np.any(out.flipped))
    else:
      self.assertLen(rest, n)
      self.assertAllEqual(out.y, out.y_true)
    self.assertAllEqual(x_test, test_before[0])  # Never given the test set.
    self.assertAllEqual(y_test, test_before[1])

  def test_corrupt_without_a_trusted_set_and_unknown_conditions(self):
    x, y = np.arange(200)[:, None], np.arange(200) % 4
    out = benchmark_sets.corrupt(x, y, "noise40", 4, seed=0)
    self.assertIsNone(out.x_trusted)
    self.assertAllEqual(out.x, x)
    self.assertEqual(int(out.flipped.sum()), 80)
    with self.assertRaisesRegex(errors.UserError, "condition must be one of"):
      benchmark_sets.corrupt(x, y, "noise30", 4, seed=0)


if __name__ == "__main__":
  tf.test.main()
