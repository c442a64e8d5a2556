"""`l2t_tf.teach` (api.py): one's own model and data, end to end.

Tiny runs (N = 2, a few rounds) of numpy and tf.data inputs, Sequential and
subclassed models; what `main` guarantees holds on this path (resume, lock,
strict JSON results, TensorBoard, the exported DLN); each bad input is a
one-line UserError.
"""
import json
import os
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

import l2t_tf
from l2t_tf import actions
from l2t_tf import rounds
from l2t_tf import run_lock
from l2t_tf.data import epochs
from l2t_tf.data import splits
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


def _ids(x):
  """The example ids `_numbered` wrote into feature 0 of a batch of x."""
  return set(np.round(np.asarray(x)[..., 0] * 1000).astype(int).ravel())


def _numbered(n=400):
  """Digits whose feature 0 (a pixel that is always 0) is the id i / 1000."""
  x, y = _digits(n)
  x[:, 0] = np.arange(n) / 1000
  return x, y


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


class FixedValidationTest(tf.test.TestCase):
  """`teach(validation_data=...)`: the teacher's fixed (trusted) set."""

  def test_the_teacher_validates_on_it_only_the_students_never_see_it(self):
    x, y = _numbered()
    train, trusted, test = range(0, 260), range(260, 300), range(300, 400)
    seen = {"train": set(), "validation": set(), "rounds": []}
    original = epochs.EpochData.epoch

    def spy(data_part, epoch):  # The same rounds the loop then runs.
      data, rounds = original(data_part, epoch)
      seen["rounds"].append(rounds)
      for (xs, _), (xv, _) in data:
        seen["train"] |= _ids(xs)
        seen["validation"] |= _ids(xv)
      return data, rounds

    with mock.patch.object(epochs.EpochData, "epoch", spy):
      result = l2t_tf.teach(
          _mlp(), (x[:260], y[:260]), test_data=(x[300:], y[300:]),
          validation_data=(x[260:300], y[260:300]),
          model_dir=os.path.join(self.get_temp_dir(), "trusted"),
          heldout_ratio=0.2, **dict(TINY, rounds_per_epoch=12,
                                    dln_warm_start=False))
    self.assertEqual(result.results["rounds_done"], 12)
    self.assertEqual(seen["rounds"], [12])
    # The teacher's batches: every trusted example, nothing else.
    self.assertEqual(seen["validation"], set(trusted))
    # The students': training examples only, none held out (heldout_ratio
    # takes its split from train_data alone, as without validation_data).
    held = np.flatnonzero(tf.random.stateless_uniform(
        [260], seed=splits.HOLDOUT_SEED, dtype=tf.float64) < 0.2)
    self.assertNotEmpty(held)
    self.assertTrue(seen["train"] <= set(train) - set(held), seen["train"])
    self.assertGreater(len(seen["train"]), 150)  # 12 rounds of 20.
    self.assertTrue(seen["train"].isdisjoint(set(trusted) | set(test)))
    self.assertIsNotNone(result.results["heldout_accuracy"])

  def test_an_epoch_has_a_round_per_validation_batch(self):
    x, y = _numbered(200)
    settings = dict(TINY, rounds_per_epoch=None, teacher_epochs=2,
                    train_comparison=False, dln_warm_start=False)
    result = l2t_tf.teach(
        _mlp(), (x[:140], y[:140]), test_data=(x[180:], y[180:]),
        validation_data=(x[140:180], y[140:180]),
        model_dir=os.path.join(self.get_temp_dir(), "rounds"), **settings)
    # 40 // validation_batch_size 20 * 1 round per batch, every epoch
    # (a random split of 140 at ratio 0.5 would vary by epoch).
    self.assertEqual([e["rounds_done"] for e in result.results["history"]],
                     [2, 4])


class FixedLossTest(tf.test.TestCase):
  """`SupervisedTask.fixed_loss`: a Table 1 baseline through `teach`."""

  def _fixed(self, name, loss=None, **kwargs):
    """The older binding (`Trainer.method`) unless a `round` is passed."""
    x, y = _digits()
    bindings = ([] if "round" in kwargs else
                ["Trainer.method = 'fixed_loss'"]) + (
                    [f"SupervisedTask.fixed_loss = {loss}"] if loss else [])
    return l2t_tf.teach(_mlp(), (x[:300], y[:300]),
                        test_data=(x[300:], y[300:]),
                        model_dir=os.path.join(self.get_temp_dir(), name),
                        gin_bindings=bindings, **TINY, **kwargs)

  def test_ce_is_the_l2t_runs_twin_and_the_bound_losses_differ(self):
    x, y = _digits()
    taught = l2t_tf.teach(_mlp(), (x[:300], y[:300]),
                          test_data=(x[300:], y[300:]),
                          model_dir=os.path.join(self.get_temp_dir(), "l2t"),
                          **dict(TINY, dln_warm_start=False))
    outputs = []  # An action of one's own, passed in (issue 24).
    ce = self._fixed("ce", round=rounds.FixedLossRound,
                     actions=[outputs.append])
    self.assertEqual([type(o) for o in outputs],
                     [actions.EpochOutput] + [actions.RoundOutput] * 4 +
                     [actions.EpochOutput])
    self.assertEqual(outputs[-1].entry["test_accuracy"],
                     ce.results["test_accuracy"])
    self.assertIsNone(ce.dln)
    self.assertIsNone(ce.ce_student)
    self.assertEqual(ce.results["method"], "fixed_loss")
    # A fixed-loss run is the L2T-DLN run's CE twin: same start, batches.
    for a, b in zip(ce.student.get_weights(),
                    taught.ce_student.get_weights()):
      self.assertAllClose(a, b, atol=1e-6)
    self.assertAllClose(ce.results["test_accuracy"],
                        taught.results["comparison_test_accuracy"])
    smooth = self._fixed("smooth01", "@smooth_01_loss")
    self.assertNotAllClose(smooth.student.get_weights()[0],
                           ce.student.get_weights()[0])
    arlf = self._fixed("arlf", "@adaptive_robust_loss()")
    self.assertNotAllClose(arlf.student.get_weights()[0],
                           ce.student.get_weights()[0])
    # ARLF's shape and scale (one per class) are trained and checkpointed.
    saved = dict(tf.train.list_variables(os.path.join(
        arlf.model_dir, "checkpoints")))
    alpha = [k for k in saved if k.startswith("fixed_loss/") and
             "alpha" in k]
    self.assertLen(alpha, 1)
    self.assertEqual(saved[alpha[0]], [10])
    value = tf.train.load_variable(os.path.join(arlf.model_dir,
                                                "checkpoints"), alpha[0])
    self.assertNotAllClose(value, np.full(10, value[0]))


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

  def test_bad_validation_data(self):
    x, y = _digits(200)
    self._error("fixed validation set \\(validation_data\\) has 15 "
                "examples, fewer than Trainer.validation_batch_size = 20",
                validation_data=(x[:15], y[:15]))
    self._error("validation_data: its examples \\(x, y\\) are "
                "\\(.float32\\[10\\].*train_data's \\(.float32\\[64\\]",
                validation_data=(x[:40, :10], y[:40]))
    self._error("validation_data: x and y must have one row per example",
                validation_data=(x[:40], y[:39]))
    self._error("labels go up to 12", validation_data=(
        x[:40], np.full(40, 12)))
    self._error("validation_data: class labels must be integer ids",
                validation_data=(x[:40], np.full(40, 0.5)))

  def test_unknown_setting(self):
    self._error("unknown setting\\(s\\) teacher_epoch;", teacher_epoch=3)


if __name__ == "__main__":
  tf.test.main()
