"""The learned DLN as a product (`export.py`): Keras loss, .keras, SavedModel."""
import os

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import l2t_tf
from l2t_tf import dln as dln_lib
from l2t_tf import export


def _batch(classes=5, n=6):
  rng = np.random.default_rng(0)
  return (rng.integers(0, classes, n),
          rng.normal(size=(n, classes)).astype(np.float32))


class DLNLossTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("float32", "float64")
  def test_ids_column_floats_and_one_hot_labels_agree(self, dtype):
    keras.utils.set_random_seed(0)
    dln = dln_lib.PairwiseDLN(dtype=dtype)
    labels, logits = _batch()
    logits = logits.astype(dtype)
    loss = export.DLNLoss(dln)
    expected = dln(labels, logits)
    for y in (labels, labels[:, None].astype(np.float32),
              keras.utils.to_categorical(labels, 5)):
      self.assertAllClose(loss(y, logits), expected, rtol=1e-6)

  def test_the_loss_is_a_copy_of_the_dln(self):
    dln = dln_lib.PairwiseDLN()
    labels, logits = _batch()
    loss = export.DLNLoss(dln)
    before = float(loss(labels, logits))
    dln.kernels[0].assign(dln.kernels[0] * 2.0)  # Teaching goes on.
    self.assertAllClose(loss(labels, logits), before)

  def test_a_compiled_model_round_trips_through_a_keras_file(self):
    keras.utils.set_random_seed(1)
    loss = export.DLNLoss(dln_lib.PairwiseDLN())
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 5, 16), 5)
    model.fit(x, y, epochs=1, verbose=0)
    path = os.path.join(self.get_temp_dir(), "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    self.assertIsInstance(loaded.loss, export.DLNLoss)
    self.assertAllClose(loaded.evaluate(x, y, verbose=0),
                        model.evaluate(x, y, verbose=0), rtol=1e-6)


class ExportLoadTest(tf.test.TestCase):

  def _dlns(self):
    return {"pairwise": (dln_lib.PairwiseDLN(hidden_units=(8,)), _batch()),
            "detection": (dln_lib.DetectionDLN(num_terms=3),
                          (None, np.ones((4, 3), np.float32)))}

  def test_every_dln_exports_and_loads_from_both_forms(self):
    for name, (dln, (y, outputs)) in self._dlns().items():
      with self.subTest(name):
        dln.set_weights([w * 0.5 for w in dln.get_weights()])
        path = l2t_tf.export_dln(dln, os.path.join(self.get_temp_dir(),
                                                   name))
        expected = dln(y, outputs)
        for source in (path, os.path.join(path, export.KERAS_FILE)):
          loss = l2t_tf.load_dln(source)
          self.assertIsInstance(loss, export.DLNLoss)
          self.assertAllClose(loss.dln(y, outputs), expected, rtol=1e-6)

  def test_a_savedmodel_only_export_still_loads(self):
    """Exports made before dln.keras was written."""
    dln, (labels, logits) = self._dlns()["pairwise"]
    path = l2t_tf.export_dln(dln, os.path.join(self.get_temp_dir(), "old"))
    os.remove(os.path.join(path, export.KERAS_FILE))
    loss = l2t_tf.load_dln(path)
    self.assertIsInstance(loss, export.LoadedDLN)
    self.assertAllClose(loss(keras.utils.to_categorical(labels, 5), logits),
                        dln(labels, logits), rtol=1e-6)

  def test_nothing_exported_is_one_line(self):
    with self.assertRaisesRegex(l2t_tf.UserError, "no exported DLN") as e:
      l2t_tf.load_dln(os.path.join(self.get_temp_dir(), "nothing"))
    self.assertNotIn("\n", str(e.exception))


if __name__ == "__main__":
  tf.test.main()
