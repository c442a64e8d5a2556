"""L2T-DLN on one's own task: a regression student and a learned loss mix.

`l2t_tf.teach` teaches classifiers by default; any other problem is a
subclass of `l2t_tf.SupervisedTask` that says what differs. Here the
student is an MLP returning one number per example, trained on
scikit-learn's diabetes data (442 patients, 10 features, a disease
progression score; shipped with scikit-learn, no download), with x and y
standardised by the training part's statistics on a fixed train/test
split. The task

* keeps the float targets (`prepare_labels`) and checks that the model
  returns [B, 1] (`check_outputs`);
* teaches a `l2t_tf.DetectionDLN(num_terms=3)`: a learned weighting
  w . [squared error, absolute error, Huber] of three loss terms,
  initialised to their plain sum (`build_dln`, `student_loss`). Its
  subclass `RegressionDLN` also takes (targets, predictions) and computes
  the terms itself, as the package's `YoloDLN` does: the experiment checks
  the DLN by calling `dln(y, outputs)` on a dummy batch (not
  `student_loss`), and the exported DLN is then a Keras loss for a
  regression model (`l2t_tf.load_dln(path)`, with this class imported);
* validates with the mean squared error (`validation_error`, the e_val the
  teacher lowers), trains the baseline twin with it (`fixed_loss`: the "CE
  twin" becomes the MSE twin) and reports the test MSE and MAE
  (`metrics`, `primary_metric`).

The default recipe's extensions fit the classification DLN (its warm start
and properness guard), so they are turned off here; the update guard (keep
a DLN update only if it did not raise the validation error) stays on.
The script prints the taught student's and its MSE twin's test MSE and the
learned weights of the three terms.

Run (about a minute on 2 CPU cores):

  python examples/own_task_regression.py
  python examples/own_task_regression.py --teacher_epochs=5
  python examples/own_task_regression.py --tiny       # a quick check
"""
import argparse
import dataclasses
import math
import os
import sys

import l2t_tf  # First: it imports TensorFlow quietly.
import keras
import numpy as np
from sklearn import datasets
import tensorflow as tf

# The budget of a tiny run (tests/test_examples.py).
TINY = dict(unroll_length=2, teacher_epochs=1, rounds_per_epoch=4,
            batch_size=10, validation_batch_size=20,
            rounds_per_validation_batch=1)
TERMS = ("squared error", "absolute error", "Huber")


def loss_terms(y, predictions):
  """Per example [squared error, absolute error, Huber (delta 1)]: [B, 3]."""
  error = predictions - tf.cast(y, predictions.dtype)
  absolute = tf.abs(error)
  huber = tf.where(absolute <= 1.0, 0.5 * tf.square(error), absolute - 0.5)
  return tf.stack([tf.reduce_mean(tf.square(error), axis=-1),
                   tf.reduce_mean(absolute, axis=-1),
                   tf.reduce_mean(huber, axis=-1)], axis=-1)


@keras.saving.register_keras_serializable(package="l2t_tf_examples")
class RegressionDLN(l2t_tf.DetectionDLN):
  """w . loss_terms(y, predictions); `dln(None, terms)` takes the terms.

  `DetectionDLN` (sum_k w_k mean_b l_k, w = 1 at the start) that also takes
  (targets, predictions [B, 1]) and makes the terms first.
  """

  def call(self, y_true, y_pred):
    if y_true is not None:
      y_pred = loss_terms(y_true, y_pred)
    return super().call(None, y_pred)


class RegressionTask(l2t_tf.SupervisedTask):
  """A student predicting one float per example; a DLN weighing 3 losses."""

  name = "regression"
  primary_metric = "test_mse"

  def prepare_labels(self, examples, what):
    """Keeps the targets as float32 of shape [1] per example."""
    del what  # Any float target is fine.
    dataset = examples.dataset.map(
        lambda x, y: (x, tf.reshape(tf.cast(y, tf.float32), [1])))
    return dataclasses.replace(examples, dataset=dataset)

  def check_outputs(self, outputs, examples):
    del examples
    if outputs.shape.rank != 2 or outputs.shape[-1] != 1:
      raise l2t_tf.UserError(
          f"student: a regression model must return [batch, 1], got shape "
          f"{list(outputs.shape)}.")

  def build_dln(self):
    """L_phi = w . [l_se, l_ae, l_huber] with w = (1, 1, 1) at the start."""
    self.dln = RegressionDLN(num_terms=len(TERMS), dtype=self.dtype)
    return self.dln

  def student_loss(self, dln, y, outputs):
    """L_phi(S_theta(x), y): the DLN on the batch's loss terms [B, 3]."""
    return dln(None, loss_terms(y, outputs))

  def validation_error(self, y, outputs):
    """e_val: the mean squared error."""
    return tf.reduce_mean(tf.square(outputs - tf.cast(y, outputs.dtype)))

  def validation_metric(self, y, outputs):
    # SupervisedTask's is the 0-1 error of a classifier.
    return self.validation_error(y, outputs)

  def fixed_loss(self, y, outputs):
    """The baseline twin's loss: the mean squared error."""
    return self.validation_error(y, outputs)

  def metrics(self, y, outputs):
    error = outputs - tf.cast(y, outputs.dtype)
    return {"test_mse": tf.reduce_mean(tf.square(error)),
            "test_mae": tf.reduce_mean(tf.abs(error))}


def load_data(seed, test_fraction=0.2):
  """((x, y), (x_test, y_test)): diabetes, x and y standardised, float32."""
  x, y = datasets.load_diabetes(return_X_y=True)
  order = np.random.default_rng(seed).permutation(len(y))
  n_test = int(round(test_fraction * len(y)))
  test, train = order[:n_test], order[n_test:]
  x = (x - x[train].mean(axis=0)) / x[train].std(axis=0)
  y = (y - y[train].mean()) / y[train].std()
  x, y = x.astype(np.float32), y.astype(np.float32)[:, None]
  return (x[train], y[train]), (x[test], y[test])


def make_model(num_features, seed):
  """One's own regression MLP: [B, num_features] -> [B, 1]."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((num_features,))
  hidden = keras.layers.Dense(32, activation="relu")(inputs)
  return keras.Model(inputs, keras.layers.Dense(1)(hidden),
                     name="my_regressor")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n\n", 1)[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument(
      "--model_dir",
      default=os.path.join("runs", "examples", "own_task_regression"),
      help="where the run lives: checkpoints, results.json, the exported DLN "
      "(default: %(default)s)")
  parser.add_argument("--teacher_epochs", type=int, default=3,
                      help="teacher epochs (default: %(default)s)")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the split and the model")
  parser.add_argument("--tiny", action="store_true",
                      help="a tiny budget (1 teacher epoch of 4 short "
                      "rounds), for the tests")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  (x, y), (x_test, y_test) = load_data(args.seed)
  model = make_model(x.shape[1], args.seed)
  if args.tiny:
    settings = dict(TINY)
  else:
    settings = dict(teacher_epochs=args.teacher_epochs, unroll_length=5,
                    batch_size=20, validation_batch_size=40,
                    rounds_per_validation_batch=5,
                    student_learning_rate=0.05)
  result = l2t_tf.teach(
      model, (x, y), test_data=(x_test, y_test), model_dir=args.model_dir,
      task=RegressionTask, seed=args.seed,
      progress=not args.tiny and sys.stderr.isatty(),
      # The recipe's extensions for the classification DLN, off:
      dln_warm_start=False, update_guard_min_properness=None,
      **settings)
  taught = result.results["test_mse"]
  twin = result.results["comparison_test_mse"]
  weights = result.dln.get_weights()[0]
  print(f"diabetes: {len(y)} training and {len(y_test)} test examples "
        f"(y standardised: predicting the mean gives an MSE of about 1)")
  print(f"test MSE, taught by the DLN: {taught:.4f} "
        f"(MAE {result.results['test_mae']:.4f})")
  print(f"test MSE, MSE twin:          {twin:.4f} "
        f"(MAE {result.results['comparison_test_mae']:.4f})")
  print(f"per teacher epoch (taught): "
        f"{[round(v, 4) for v in result.history['test_mse']]}")
  print("learned loss: " + " + ".join(
      f"{w:.3f} * {term}" for w, term in zip(weights, TERMS)))
  print(f"rounds: {result.results['rounds_done']}, "
        f"time: {result.results['train_time_s']:.1f} s")

  # The exported DLN is a Keras loss for a regression model.
  loss = l2t_tf.load_dln(result.results["dln_export_path"])
  predictions = result.student.predict(x_test, verbose=0)
  exported = float(loss(y_test, predictions))
  learned = float(result.dln(None, loss_terms(y_test, predictions)))
  print(f"exported DLN, read back by l2t_tf.load_dln: {exported:.6g} on the "
        f"test set (the taught DLN: {learned:.6g})")
  if not (math.isfinite(taught) and math.isfinite(twin)):
    sys.exit("a test MSE is not finite")
  if not math.isclose(exported, learned, rel_tol=1e-5, abs_tol=1e-6):
    sys.exit(f"the exported DLN gives {exported}, not {learned}")


if __name__ == "__main__":
  try:
    main()
  except l2t_tf.UserError as e:  # A mistake in the input: one line.
    sys.exit(f"error: {e}")
