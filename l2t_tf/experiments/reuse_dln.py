r"""The learned DLN as a loss for a model it never taught (docs/results.md).

  python tools/reuse_dln.py --dln=runs/digits_l2t_dln/dln_export
  python tools/reuse_dln.py --dln=a/dln_export --dln=b/dln_export --seeds=3
  python tools/reuse_dln.py --set=segment --dln=<segment run>/dln_export

Trains a fresh MLP (flatten -> Dense(64, relu) -> Dense(C), logits) on
the training split of `--set` (a `benchmark_sets` name; digits by default) with plain Keras (`model.compile(loss=...)`,
`model.fit`), SGD with `--learning_rate` (0.1), batch 25, `--epochs` (30),
once with each exported DLN (`l2t_tf.load_dln`) and once with
cross-entropy, from the same initial weights and the same batch order, and
prints one JSON object: test accuracy per loss and seed, their means, and
the difference DLN - CE in points.
"""
import argparse
import os
import sys

import keras
import numpy as np

import l2t_tf
from l2t_tf.data import benchmark_sets
from l2t_tf import strict_json


def fresh_mlp(seed, input_shape, num_classes):
  keras.utils.set_random_seed(seed)
  return keras.Sequential([
      keras.Input(input_shape), keras.layers.Flatten(),
      keras.layers.Dense(64, activation="relu"),
      keras.layers.Dense(num_classes)])


def train_and_test(loss, seed, epochs, learning_rate, train, test):
  """Test accuracy of a fresh MLP trained with `loss` (seeded batches)."""
  num_classes = int(max(train[1].max(), test[1].max())) + 1
  model = fresh_mlp(seed, train[0].shape[1:], num_classes)
  model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss=loss)
  keras.utils.set_random_seed(seed)  # Same shuffling for every loss.
  model.fit(*train, batch_size=25, epochs=epochs, shuffle=True, verbose=0)
  logits = model.predict(test[0], batch_size=500, verbose=0)
  return float(np.mean(np.argmax(logits, -1) == test[1]))


def dln_parser(description):
  """An argument parser with the DLN tools' --dln (repeatable) and --set."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--dln", action="append", required=True,
                      help="an exported DLN directory (dln_export)")
  parser.add_argument("--set", default="digits",
                      choices=benchmark_sets.NAMES)
  return parser


def load_dlns(paths):
  """{path: the exported DLN as a Keras loss}; exits in one line if absent."""
  for path in paths:
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
      sys.exit(f"error: --dln={path}: no exported DLN there (run "
               f"`python -m l2t_tf.main` first; it writes <model_dir>/"
               f"dln_export).")
  return {path: l2t_tf.load_dln(path) for path in paths}


def main(argv=None):
  parser = dln_parser(__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=30)
  parser.add_argument("--learning_rate", type=float, default=0.1)
  args = parser.parse_args(argv)
  dlns = load_dlns(args.dln)
  x, y, x_test, y_test = benchmark_sets.load(args.set)
  train, test = (x, y), (x_test, y_test)
  ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  losses = {"cross_entropy": ce}
  losses.update(dlns)
  accuracy = {name: [train_and_test(loss, seed, args.epochs,
                                    args.learning_rate, train, test)
                     for seed in range(args.seeds)]
              for name, loss in losses.items()}
  means = {name: float(np.mean(v)) for name, v in accuracy.items()}
  print(strict_json.dumps({
      "test_accuracy": accuracy, "mean_test_accuracy": means,
      "dln_minus_ce_points": {p: 100 * (means[p] - means["cross_entropy"])
                              for p in args.dln},
      "set": args.set, "epochs": args.epochs,
      "learning_rate": args.learning_rate,
      "seeds": args.seeds}, indent=1))


if __name__ == "__main__":
  main()
