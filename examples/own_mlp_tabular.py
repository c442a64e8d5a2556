"""L2T-DLN on one's own Keras MLP and numpy tabular data.

Shows the shortest path from a Keras model and numpy arrays to a taught
student: a Sequential MLP on scikit-learn's breast-cancer data (569
examples, 30 features, 2 classes; shipped with scikit-learn, no download),
standardised with the training part's statistics on a fixed train/test
split, is taught by `l2t_tf.teach`. Its CE twin (the same initial weights
trained with cross-entropy on the same batches) is the baseline; the script
prints both test accuracies.

Run (about a minute on 2 CPU cores):

  python examples/own_mlp_tabular.py
  python examples/own_mlp_tabular.py --teacher_epochs=5 --model_dir=/tmp/mlp
  python examples/own_mlp_tabular.py --tiny       # a few seconds' check

Calling it again with the same --model_dir resumes the run, or reports the
finished one.
"""
import argparse
import math
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


def load_data(seed, test_fraction=0.25):
  """((x, y), (x_test, y_test)): breast cancer, standardised, float32."""
  x, y = datasets.load_breast_cancer(return_X_y=True)
  order = np.random.default_rng(seed).permutation(len(y))
  n_test = int(round(test_fraction * len(y)))
  test, train = order[:n_test], order[n_test:]
  mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-8
  x = ((x - mean) / std).astype(np.float32)
  return (x[train], y[train]), (x[test], y[test])


def make_model(num_features, num_classes, seed):
  """One's own MLP returning logits [B, num_classes] (no final softmax)."""
  keras.utils.set_random_seed(seed)
  return keras.Sequential([
      keras.Input((num_features,)),
      keras.layers.Dense(64, activation="relu"),
      keras.layers.Dense(32, activation="relu"),
      keras.layers.Dense(num_classes),
  ], name="my_mlp")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n\n", 1)[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument(
      "--model_dir",
      default=os.path.join("runs", "examples", "own_mlp_tabular"),
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
  model = make_model(x.shape[1], 2, args.seed)
  if args.tiny:
    settings = dict(TINY)
  else:
    settings = dict(teacher_epochs=args.teacher_epochs, unroll_length=5,
                    batch_size=25, validation_batch_size=50,
                    rounds_per_validation_batch=5)
  result = l2t_tf.teach(model, (x, y), test_data=(x_test, y_test),
                        model_dir=args.model_dir, seed=args.seed,
                        progress=not args.tiny and sys.stderr.isatty(),
                        **settings)
  taught = result.results["test_accuracy"]
  twin = result.results["comparison_test_accuracy"]
  print(f"breast cancer: {len(y)} training and {len(y_test)} test examples")
  print(f"test accuracy, taught by the DLN: {taught:.4f}")
  print(f"test accuracy, CE twin:           {twin:.4f}")
  print(f"per teacher epoch (taught): "
        f"{[round(a, 4) for a in result.history['test_accuracy']]}")
  print(f"rounds: {result.results['rounds_done']}, "
        f"time: {result.results['train_time_s']:.1f} s")
  print(f"learned DLN: {result.results['dln_export_path']}")
  if not (math.isfinite(taught) and math.isfinite(twin)):
    sys.exit("a test accuracy is not finite")


if __name__ == "__main__":
  try:
    main()
  except l2t_tf.UserError as e:  # A mistake in the input: one line.
    sys.exit(f"error: {e}")
