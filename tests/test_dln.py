"""The DLNs: closed forms, ignore labels, scalar output, export as a Keras loss."""
import os

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import l2t_tf
from l2t_tf import dln as dln_lib


def _sigmoid(z):
  return 1 / (1 + np.exp(-z))


class PairwiseDLNTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("float32", "float64")
  def test_linear_dln_closed_form(self, dtype):
    """No hidden layer: loss = sum_{i, j != y_i} w . row_ij / (B * C)."""
    dln = dln_lib.PairwiseDLN(hidden_units=(), dtype=dtype)
    w = np.array([0.3, -0.8, 0.5, 2.0])
    dln.kernels[0].assign(w[:, None])
    logits = np.array([[1.0, -2.0, 0.5], [0.2, 0.1, -0.3]])
    labels = np.array([2, 0])
    s = _sigmoid(logits)
    total = 0.0
    for i, y in enumerate(labels):
      for j in range(3):
        if j != y:
          total += w @ np.array([s[i, y], s[i, j], 1.0, 0.0])
    self.assertAllClose(dln(labels, logits.astype(dtype)), total / 6,
                        rtol=1e-6 if dtype == "float32" else 1e-12)

  def test_softmax2_closed_form(self):
    dln = dln_lib.PairwiseDLN(hidden_units=(), input_mode="softmax2",
                              dtype="float64")
    dln.kernels[0].assign([[1.5], [-0.5]])
    logits = np.array([[0.0, 1.0, 2.0]])
    p = np.exp(logits) / np.exp(logits).sum()
    expected = sum(1.5 * p[0, 1] - 0.5 * p[0, j] for j in (0, 2)) / 3
    self.assertAllClose(dln(np.array([1]), logits), expected)

  def test_default_architecture(self):
    dln = dln_lib.PairwiseDLN()
    shapes = [tuple(v.shape) for v in dln.trainable_variables]
    self.assertEqual(shapes, [(4, 40), (40, 40), (40, 40), (40, 40), (40, 1)])
    self.assertEqual(sum(np.prod(s) for s in shapes), 5000)

  @parameterized.parameters(0, 1, 2)
  def test_kernels_are_drawn_independently(self, seed):
    """Every kernel is its own kaiming-normal (fan_out) draw (issue 12).

    A shared Keras 3 initializer instance gives every layer the same numbers
    (kernel_1 == kernel_2, kernel_0 == kernel_1[:4]); the release draws each
    layer independently with std sqrt(2 / (1 + 0.01^2) / fan_out).
    """
    keras.utils.set_random_seed(seed)
    kernels = [v.numpy() for v in dln_lib.PairwiseDLN().kernels]
    for a in range(len(kernels)):  # One seed's stream, reshaped, shows up
      for b in range(a + 1, len(kernels)):  # as correlated flat prefixes.
        size = min(kernels[a].size, kernels[b].size)  # >= 40 numbers.
        first, second = kernels[a].ravel()[:size], kernels[b].ravel()[:size]
        self.assertLess(abs(np.corrcoef(first, second)[0, 1]), 0.6,
                        f"kernel_{a} and kernel_{b} are correlated")
    hidden = np.concatenate([k.ravel() for k in kernels[1:4]])
    expected_std = np.sqrt(2.0 / (1 + 0.01**2) / 40)
    self.assertAllClose(hidden.std(), expected_std, rtol=0.05)
    self.assertAllClose(hidden.mean(), 0.0, atol=0.02)
    self.assertAllClose(kernels[4].std(), np.sqrt(2.0 / (1 + 1e-4)), rtol=0.5)
    keras.utils.set_random_seed(seed)
    again = [v.numpy() for v in dln_lib.PairwiseDLN().kernels]
    for k, k2 in zip(kernels, again):  # Still reproducible from the seed.
      self.assertAllEqual(k, k2)

  def test_ignore_label_per_pixel(self):
    """Pixels labelled 255 contribute nothing; [B, H, W, C] maps work."""
    dln = dln_lib.PairwiseDLN(hidden_units=(5,), ignore_label=255,
                              dtype="float64")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 3, 4))
    labels = rng.integers(0, 4, size=(2, 3, 3))
    masked = labels.copy()
    masked[0, 0, :] = 255
    keep = masked != 255
    loss = dln(masked, logits)
    self.assertEqual(loss.shape.rank, 0)
    self.assertAllClose(loss, dln(labels[keep], logits[keep]))
    self.assertAllClose(dln(np.full((1, 2), 255), logits[:1, 0, :2]), 0.0)

  @parameterized.parameters(True, False)
  def test_true_class_rows_add_nothing(self, use_bias):
    dln = dln_lib.PairwiseDLN(hidden_units=(3,), use_bias=use_bias,
                              dtype="float64")
    for b in dln.biases:
      b.assign(np.full(b.shape, 0.5))
    rows, wrong = dln.rows(np.array([1]), np.array([[0.1, 0.2, 0.3]]))
    self.assertAllEqual(wrong, [[1.0, 0.0, 1.0]])
    self.assertAllEqual(rows[0, 1], [0.0] * 4)
    out = dln.mlp(rows) * wrong
    self.assertAllClose(dln(np.array([1]), np.array([[0.1, 0.2, 0.3]])),
                        tf.reduce_sum(out) / 3)

  def test_non_scalar_dln_is_rejected(self):
    per_sample = lambda y, p: tf.reduce_sum(p, -1)
    with self.assertRaisesRegex(ValueError, "dln: .*scalar"):
      dln_lib.check_scalar_loss(per_sample, np.zeros(3), np.zeros((3, 2)))


class DetectionDLNTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("float32", "float64")
  def test_weighted_sum(self, dtype):
    dln = dln_lib.DetectionDLN(dtype=dtype)
    terms = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], dtype)
    self.assertAllClose(dln(None, terms), 2.0 + 3.0 + 4.0)
    dln.kernel.assign([0.5, 0.0, 2.0])
    self.assertAllClose(dln(None, terms), 0.5 * 2.0 + 2.0 * 4.0)


class ExportTest(tf.test.TestCase):

  def test_export_load_and_fit(self):
    keras.utils.set_random_seed(0)
    dln = dln_lib.PairwiseDLN()
    path = l2t_tf.export_dln(dln, os.path.join(self.get_temp_dir(), "dln"))
    loss = l2t_tf.load_dln(path)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 6)
    self.assertAllClose(loss(labels, logits), dln(labels, logits), rtol=1e-6)
    # Usable as an ordinary Keras loss, labels as [B, 1] floats included.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = rng.integers(0, 5, (32, 1)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    self.assertTrue(np.all(np.isfinite(history.history["loss"])))
    self.assertFalse(all(np.array_equal(a, b) for a, b in
                         zip(before, model.get_weights())))


if __name__ == "__main__":
  tf.test.main()
