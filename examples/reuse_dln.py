"""A learned DLN as the loss of a fresh Keras model in `model.fit`.

Shows the learned loss as a product: `l2t_tf.load_dln(path)` reads a DLN
that a run exported (its `<model_dir>/dln_export` directory, or a DLN
`.keras` file) as a `keras.losses.Loss`, so a new model trains with plain
Keras:

  model.compile(optimizer, loss=l2t_tf.load_dln(path))
  model.fit(x, y)

The script trains a fresh MLP on scikit-learn's digits (shipped with
scikit-learn, no download) three times from the same initial weights and
on the same batches: with the DLN and integer labels, with the DLN and
one-hot labels (`keras.utils.to_categorical`; the DLN takes both, as
Keras' own losses do, so the two runs must agree), and with
cross-entropy. It prints their test accuracies, then saves the model
compiled with the DLN as a `.keras` file, loads it back with
`keras.saving.load_model` and checks that the reloaded model's loss gives
the same value. (A DLN's value is no cross-entropy: it is not bounded below
and is often negative; what the student learns from is its gradient.)

Without `--dln`, a short `l2t_tf.teach` run (about a minute on 2 CPU cores)
first learns a DLN into `<model_dir>/teach`; a second call reuses it.

Run:

  python examples/reuse_dln.py
  python examples/reuse_dln.py --dln=runs/digits_l2t_dln/dln_export
  python examples/reuse_dln.py --dln=my_dln.keras --epochs=20
  python examples/reuse_dln.py --tiny       # a quick check
"""
import argparse
import os
import sys

import l2t_tf  # First: it imports TensorFlow quietly.
import keras
import numpy as np
from sklearn import datasets

# The budget of a tiny run (tests/test_examples.py).
TINY = dict(unroll_length=2, teacher_epochs=1, rounds_per_epoch=4,
            batch_size=10, validation_batch_size=20,
            rounds_per_validation_batch=1)
NUM_CLASSES = 10


def load_data(seed, test_fraction=0.2):
  """((x, y), (x_test, y_test)): digits as float32 rows in [0, 1]."""
  x, y = datasets.load_digits(return_X_y=True)
  x = (x / 16.0).astype(np.float32)
  order = np.random.default_rng(seed).permutation(len(y))
  n_test = int(round(test_fraction * len(y)))
  test, train = order[:n_test], order[n_test:]
  return (x[train], y[train]), (x[test], y[test])


def make_model(seed):
  """A fresh MLP returning logits [B, 10]."""
  keras.utils.set_random_seed(seed)
  return keras.Sequential([
      keras.Input((64,)),
      keras.layers.Dense(64, activation="relu"),
      keras.layers.Dense(NUM_CLASSES),
  ], name="fresh_mlp")


def learn_dln(model_dir, data, seed, tiny):
  """Teaches an MLP briefly; returns the exported DLN's directory."""
  (x, y), _ = data
  budget = (dict(TINY) if tiny else
            dict(teacher_epochs=2, unroll_length=5, batch_size=25,
                 validation_batch_size=100, rounds_per_validation_batch=3))
  result = l2t_tf.teach(make_model(seed), (x, y),
                        model_dir=os.path.join(model_dir, "teach"), seed=seed,
                        progress=not tiny and sys.stderr.isatty(), **budget)
  print(f"learned a DLN in {result.results['rounds_done']} rounds "
        f"(taught student's test accuracy "
        f"{result.results['test_accuracy']:.4f}, CE twin's "
        f"{result.results['comparison_test_accuracy']:.4f})")
  return result.results["dln_export_path"]


def fit(loss, labels, data, initial_weights, args):
  """A fresh model trained with `loss` on `labels`; (model, accuracy)."""
  (x, _), (x_test, y_test) = data
  model = make_model(args.seed)
  model.set_weights(initial_weights)
  model.compile(optimizer=keras.optimizers.SGD(args.learning_rate),
                loss=loss, metrics=["accuracy"] if labels.ndim == 1 else
                ["categorical_accuracy"])
  keras.utils.set_random_seed(args.seed)  # The same batches every time.
  model.fit(x, labels, batch_size=25, epochs=args.epochs, verbose=0)
  predicted = np.argmax(model.predict(x_test, verbose=0), axis=-1)
  return model, float(np.mean(predicted == y_test))


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n\n", 1)[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument(
      "--dln", default=None,
      help="an exported DLN: a run's <model_dir>/dln_export directory or a "
      ".keras file (default: learn one first, into <model_dir>/teach)")
  parser.add_argument(
      "--model_dir", default=os.path.join("runs", "examples", "reuse_dln"),
      help="where the DLN is learned (without --dln) and the compiled "
      "model is saved (default: %(default)s)")
  parser.add_argument("--epochs", type=int, default=10,
                      help="epochs of model.fit (default: %(default)s)")
  parser.add_argument("--learning_rate", type=float, default=0.1,
                      help="SGD learning rate of model.fit (default: "
                      "%(default)s, the recipe's student learning rate)")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the split, the model and the batches")
  parser.add_argument("--tiny", action="store_true",
                      help="a tiny budget (a 4-round teach, 1 epoch of fit), "
                      "for the tests")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  if args.tiny:
    args.epochs = 1
  data = load_data(args.seed)
  (x, y), (x_test, y_test) = data
  path = args.dln or learn_dln(args.model_dir, data, args.seed, args.tiny)
  dln_loss = l2t_tf.load_dln(path)
  print(f"DLN: {type(dln_loss.dln).__name__} from {path}")

  initial_weights = make_model(args.seed).get_weights()
  with_ids, acc_ids = fit(dln_loss, y, data, initial_weights, args)
  _, acc_one_hot = fit(l2t_tf.load_dln(path),
                       keras.utils.to_categorical(y, NUM_CLASSES), data,
                       initial_weights, args)
  _, acc_ce = fit(keras.losses.SparseCategoricalCrossentropy(
      from_logits=True), y, data, initial_weights, args)
  epochs = f"{args.epochs} epoch{'s' if args.epochs > 1 else ''}"
  print(f"digits, {epochs} of SGD ({args.learning_rate:g}) from the same "
        f"initial weights and batches; test accuracy:")
  print(f"  DLN, integer labels:  {acc_ids:.4f}")
  print(f"  DLN, one-hot labels:  {acc_one_hot:.4f}")
  print(f"  cross-entropy:        {acc_ce:.4f}")

  # The compiled model, DLN loss included, round-trips through .keras.
  os.makedirs(args.model_dir, exist_ok=True)
  saved = os.path.join(args.model_dir, "fresh_mlp_dln.keras")
  with_ids.save(saved)
  reloaded = keras.saving.load_model(saved)
  logits = with_ids.predict(x_test, verbose=0)
  before = float(with_ids.loss(y_test, logits))
  after = float(reloaded.loss(y_test, reloaded.predict(x_test, verbose=0)))
  print(f"saved the compiled model to {saved}; reloaded, its "
        f"{type(reloaded.loss).__name__} gives {after:.6g} on the test set "
        f"(before saving: {before:.6g})")
  failures = []
  if not np.isclose(before, after, rtol=1e-5, atol=1e-6):
    failures.append(f"the reloaded loss differs ({after} != {before})")
  if acc_ids != acc_one_hot:
    failures.append(f"integer and one-hot labels disagree ({acc_ids} != "
                    f"{acc_one_hot})")
  if failures:
    sys.exit("; ".join(failures))
  print("OK: integer and one-hot labels agree; the reloaded loss matches.")


if __name__ == "__main__":
  try:
    main()
  except l2t_tf.UserError as e:  # A mistake in the input: one line.
    sys.exit(f"error: {e}")
