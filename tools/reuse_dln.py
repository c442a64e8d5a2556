r"""The learned DLN as a loss for a model it never taught (docs/results.md).

  python tools/reuse_dln.py --dln=runs/digits_l2t_dln/dln_export
  python tools/reuse_dln.py --dln=a/dln_export --dln=b/dln_export --seeds=3

Trains a fresh MLP (flatten -> Dense(64, relu) -> Dense(10), logits) on
digits' training split with plain Keras (`model.compile(loss=...)`,
`model.fit`), SGD with `--learning_rate` (0.1), batch 25, `--epochs` (30),
once with each exported DLN (`l2t_tf.load_dln`) and once with
cross-entropy, from the same initial weights and the same batch order, and
prints one JSON object: test accuracy per loss and seed, their means, and
the difference DLN - CE in points.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # pylint: disable=g-import-not-at-top
import numpy as np

import l2t_tf
from l2t_tf.data import digits
from l2t_tf import strict_json


def _arrays(split):
  """(x [n, 8, 8, 1], y [n]) numpy arrays of digits' `split`."""
  x, y, test = digits._arrays()  # pylint: disable=protected-access
  keep = test if split == "test" else ~test
  return x[keep], y[keep]


def fresh_mlp(seed):
  keras.utils.set_random_seed(seed)
  return keras.Sequential([
      keras.Input(digits.INPUT_SHAPE), keras.layers.Flatten(),
      keras.layers.Dense(64, activation="relu"),
      keras.layers.Dense(digits.NUM_CLASSES)])


def train_and_test(loss, seed, epochs, learning_rate, train, test):
  """Test accuracy of a fresh MLP trained with `loss` (seeded batches)."""
  model = fresh_mlp(seed)
  model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss=loss)
  keras.utils.set_random_seed(seed)  # Same shuffling for every loss.
  model.fit(*train, batch_size=25, epochs=epochs, shuffle=True, verbose=0)
  logits = model.predict(test[0], batch_size=500, verbose=0)
  return float(np.mean(np.argmax(logits, -1) == test[1]))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--dln", action="append", required=True,
                      help="an exported DLN directory (dln_export)")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=30)
  parser.add_argument("--learning_rate", type=float, default=0.1)
  args = parser.parse_args(argv)
  for path in args.dln:
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
      sys.exit(f"error: --dln={path}: no exported DLN there (run "
               f"`python -m l2t_tf.main` first; it writes <model_dir>/"
               f"dln_export).")
  train, test = _arrays("train"), _arrays("test")
  ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  losses = {"cross_entropy": ce}
  losses.update({path: l2t_tf.load_dln(path) for path in args.dln})
  accuracy = {name: [train_and_test(loss, seed, args.epochs,
                                    args.learning_rate, train, test)
                     for seed in range(args.seeds)]
              for name, loss in losses.items()}
  means = {name: float(np.mean(v)) for name, v in accuracy.items()}
  print(strict_json.dumps({
      "test_accuracy": accuracy, "mean_test_accuracy": means,
      "dln_minus_ce_points": {p: 100 * (means[p] - means["cross_entropy"])
                              for p in args.dln},
      "epochs": args.epochs, "learning_rate": args.learning_rate,
      "seeds": args.seeds}, indent=1))


if __name__ == "__main__":
  main()
