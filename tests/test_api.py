"""`l2t_tf.teach` (api.py): one's own model and data, end to end.

Tiny runs (N = 2, a few rounds) of numpy and tf.data inputs, Sequential and
subclassed models; what `main` guarantees holds on this path (resume, lock,
strict JSON results, TensorBoard, the exported DLN); each bad input is a
one-line UserError.
"""
import json
import os

import keras
import numpy as np
import tensorflow as tf

import l2t_tf
from l2t_tf import run_lock
from l2t_tf.students import batch_norm

TINY = dict(unroll_length=2, teacher_epochs=1, rounds_per_epoch=4,
            batch_size=10, validation_batch_size=20,
            rounds_per_validation_batch=1, progress=False)


def _digits(n=400):
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  x, y = datasets.load_digits(return_X_y=True)
  return (x[:n] / 16.0).astype(np.float32), y[:n]


def _mlp(classes=10, final=None):
  keras.utils.set_random_seed(0)
  return keras.Sequential([keras.Input((64,)),
                           keras.layers.Dense(16, activation="relu"),
                           keras.layers.Dense(classes, activation=final)])


class SmallCNN(keras.Model):
  """A subclassed CNN with Keras' own BatchNormalization."""

  def __init__(self, classes=10, **kwargs):
    super().__init__(**kwargs)
    self.classes = classes
    self.conv = keras.layers.Conv2D(4, 3, use_bias=False, padding="same")
    self.norm = keras.layers.BatchNormalization()
    self.pool = keras.layers.GlobalAveragePooling2D()
    self.head = keras.layers.Dense(classes)

  def call(self, x, training=False):
    h = keras.activations.relu(self.norm(self.conv(x), training=training))
    return self.head(self.pool(h))

  def get_config(self):
    return dict(super().get_config(), classes=self.classes)


class TeachTest(tf.test.TestCase):

  def test_numpy_mlp_end_to_end_learned_loss_then_resume(self):
    x, y = _digits()
    model_dir = os.path.join(self.get_temp_dir(), "mlp")
    model = _mlp()
    result = l2t_tf.teach(model, (x[:300], y[:300]),
                          test_data=(x[300:], y[300:]), model_dir=model_dir,
                          **TINY)
    self.assertIs(result.student, model)
    self.assertIsNot(result.ce_student, model)
    self.assertEqual(result.results["rounds_done"], 4)
    for key in ("test_accuracy", "comparison_test_accuracy"):
      self.assertBetween(result.results[key], 0.0, 1.0)
    self.assertEqual(result.history["epoch"], [1])
    with open(os.path.join(model_dir, "results.json")) as f:
      self.assertEqual(json.load(f)["rounds_done"], 4)  # Strict JSON.
    for path in ("tensorboard", "checkpoints", "dln_export/dln.keras",
                 "operative_config.gin"):
      self.assertTrue(os.path.exists(os.path.join(model_dir, path)), path)
    # The taught student's accuracy is its own (not a copy's).
    logits = model.predict(x[300:], verbose=0)
    self.assertAllClose(np.mean(np.argmax(logits, -1) == y[300:]),
                        result.results["test_accuracy"])
    # The learned loss: ids and one-hot labels, the export, a fresh model.
    loss, logits = result.loss, model(x[:20])
    self.assertAllClose(loss(y[:20], logits),
                        loss(keras.utils.to_categorical(y[:20], 10), logits))
    self.assertAllClose(loss(y[:20], logits), result.dln(y[:20], logits))
    exported = l2t_tf.load_dln(result.results["dln_export_path"])
    self.assertAllClose(exported(y[:20], logits), loss(y[:20], logits))
    fresh = _mlp()
    fresh.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    self.assertTrue(np.isfinite(fresh.fit(
        x, keras.utils.to_categorical(y, 10), epochs=1,
        verbose=0).history["loss"][0]))
    # Again on the same model_dir: a finished run reports the same figures.
    again = l2t_tf.teach(_mlp(), (x[:300], y[:300]),
                         test_data=(x[300:], y[300:]), model_dir=model_dir,
                         **TINY)
    self.assertEqual(again.results["resumed_from_round"], 4)
    self.assertEqual(again.results["test_accuracy"],
                     result.results["test_accuracy"])
    self.assertAllEqual(again.student.get_weights()[0],
                        model.get_weights()[0])

  def test_tf_data_subclassed_cnn_with_keras_batch_norm(self):
    x, y = _digits()
    images = x.reshape(-1, 8, 8, 1)
    train = tf.data.Dataset.from_tensor_slices((images[:300], y[:300]))
    test = tf.data.Dataset.from_tensor_slices((images[300:], y[300:]))
    result = l2t_tf.teach(
        lambda: SmallCNN(), train.batch(32), test_data=test.batch(50),
        model_dir=os.path.join(self.get_temp_dir(), "cnn"), **TINY)
    self.assertIsInstance(result.student, SmallCNN)
    self.assertIsInstance(result.ce_student, SmallCNN)
    self.assertIsInstance(result.student.norm, batch_norm.BatchNormalization)
    self.assertIsInstance(result.ce_student.norm,
                          batch_norm.BatchNormalization)
    self.assertNotAllClose(result.student.get_weights()[0],
                           result.ce_student.get_weights()[0])
    self.assertBetween(result.results["test_accuracy"], 0.0, 1.0)

  def test_a_held_lock_stops_a_second_run(self):
    x, y = _digits(200)
    model_dir = os.path.join(self.get_temp_dir(), "locked")
    os.makedirs(model_dir)
    with run_lock.hold(model_dir):
      with self.assertRaisesRegex(l2t_tf.UserError, "in use by another run"):
        l2t_tf.teach(_mlp(), (x, y), model_dir=model_dir, **TINY)


class BadInputTest(tf.test.TestCase):
  """A mistake stops `teach` before it trains, in one line."""

  def _error(self, pattern, model=None, data=None, **settings):
    x, y = _digits(200)
    model_dir = os.path.join(self.get_temp_dir(), "bad")
    with self.assertRaisesRegex(l2t_tf.UserError, pattern) as caught:
      l2t_tf.teach(model or _mlp(), data or (x, y), model_dir=model_dir,
                   **dict(TINY, **settings))
    self.assertNotIn("\n", str(caught.exception))
    self.assertFalse(os.path.exists(os.path.join(model_dir, "checkpoints")))

  def test_labels_beyond_the_models_classes(self):
    self._error("labels go up to 9.*at least 10 logits", model=_mlp(3))

  def test_outputs_that_are_not_logits(self):
    self._error("returns probabilities", model=_mlp(final="softmax"))
    inputs = keras.Input((64,))
    cube = keras.Model(inputs, keras.layers.Reshape((5, 2))(
        keras.layers.Dense(10)(inputs)))
    self._error("logits of shape \\[batch, classes\\]", model=cube)

  def test_bad_data(self):
    x, y = _digits(200)
    broken = x.copy()
    broken[0, 0] = np.inf
    self._error("NaN or infinite", data=(broken, y))
    self._error("\\(x, y\\) pairs",
                data=tf.data.Dataset.from_tensor_slices(x))
    self._error("cannot take the data's x", data=(x[:, :10], y))

  def test_unknown_setting(self):
    self._error("unknown setting\\(s\\) teacher_epoch;", teacher_epoch=3)


if __name__ == "__main__":
  tf.test.main()
