r"""Does the warm-started DLN learn like CE? Its student gradient against CE's.

  python tools/dln_gradient_ratio.py                       # every set, JSON
  python tools/dln_gradient_ratio.py --sets=mnist1d/conv1d --scales=1,2

Issue 23, item 2. For each benchmark data set / student and each warm-start
`scale` (`dln_warm_start`), two copies of the same initial student learn
with plain SGD on the same batches (the recipe's learning rate and batch
size, no teaching): one from the warm-started DLN kept frozen, one from
cross-entropy. Every `--every` steps, at the DLN student's weights and on
its batch:

  norm_ratio = |grad_theta L_DLN| / |grad_theta CE|     (1: CE's step size)
  cosine     = <grad L_DLN, grad CE> / (|.| |.|)

and at the end both students' accuracy on a held-out 20 % of the training
split (a seeded permutation of its own, not the Trainer's `heldout_ratio`
examples; the test split is never read). Prints one
JSON object {set/student: {scale: {...}}}. The closed form behind it:
at zero logits the (W1) DLN's logit gradient is half of CE's
(`dln_warm_start`'s docstring).
"""
import argparse
import json

import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import dln_warm_start
from l2t_tf.data import benchmark_sets
from l2t_tf.experiments import generalization
from l2t_tf.hypergradient import sparse_cross_entropy as _ce


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--sets", default=",".join(generalization.SETS))
  parser.add_argument("--scales", default="1,2")
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--every", type=int, default=25)
  parser.add_argument("--batch_size", type=int, default=25)
  parser.add_argument("--learning_rate", type=float, default=0.1)
  parser.add_argument("--seed", type=int, default=0)
  return parser.parse_args(argv)


def _held_out(x, y, seed, ratio=generalization.HELDOUT_RATIO):
  order = np.random.RandomState(seed).permutation(len(y))
  cut = int(round(len(y) * ratio))
  return (x[order[cut:]], y[order[cut:]]), (x[order[:cut]], y[order[:cut]])


def _flat_norm(grads):
  return tf.sqrt(sum(tf.reduce_sum(tf.square(g)) for g in grads))


def _dot(a, b):
  return sum(tf.reduce_sum(u * v) for u, v in zip(a, b))


def run(set_and_student, scale, args):
  """{norm_ratio/cosine per checkpoint, held-out accuracies} of one cell."""
  x, y, _, _ = benchmark_sets.load(set_and_student.split("/")[0])
  (x, y), (xh, yh) = _held_out(x, y, args.seed)
  num_classes = int(y.max()) + 1
  tf.keras.utils.set_random_seed(args.seed)
  build = generalization._student(  # pylint: disable=protected-access
      set_and_student, x.shape[1:], num_classes)
  taught, ce_student = build(), build()
  ce_student.set_weights(taught.get_weights())
  dln = dln_lib.classification_dln()
  fit = dln_warm_start.warm_start(dln, scale=scale)
  dln.trainable = False

  @tf.function
  def step(xb, yb):
    with tf.GradientTape(persistent=True) as tape:
      logits = taught(xb, training=True)
      l_dln, l_ce = dln(yb, logits), _ce(yb, logits)
    g_dln = tape.gradient(l_dln, taught.trainable_variables)
    g_ce = tape.gradient(l_ce, taught.trainable_variables)
    del tape
    with tf.GradientTape() as tape:
      l_twin = _ce(yb, ce_student(xb, training=True))
    g_twin = tape.gradient(l_twin, ce_student.trainable_variables)
    for v, g in zip(taught.trainable_variables, g_dln):
      v.assign_sub(args.learning_rate * g)
    for v, g in zip(ce_student.trainable_variables, g_twin):
      v.assign_sub(args.learning_rate * g)
    n_dln, n_ce = _flat_norm(g_dln), _flat_norm(g_ce)
    return n_dln / n_ce, _dot(g_dln, g_ce) / (n_dln * n_ce)

  ratios, cosines, steps = [], [], 0
  rng = np.random.RandomState(args.seed)
  for _ in range(args.epochs):
    order = rng.permutation(len(y))
    for i in range(0, len(y) - args.batch_size + 1, args.batch_size):
      idx = order[i:i + args.batch_size]
      ratio, cosine = step(tf.constant(x[idx]), tf.constant(y[idx]))
      if steps % args.every == 0:
        ratios.append(float(ratio))
        cosines.append(float(cosine))
      steps += 1

  def accuracy(model):
    logits = model(tf.constant(xh), training=False)
    return float(np.mean(np.argmax(logits, -1) == yh))
  thirds = [t for t in np.array_split(np.arange(len(ratios)), 3) if len(t)]
  return {"warm_start_rmse": fit["warm_start_rmse"], "steps": steps,
          "norm_ratio_by_third": [float(np.mean(np.array(ratios)[t]))
                                  for t in thirds],
          "norm_ratio_first": ratios[0],
          "cosine_mean": float(np.mean(cosines)),
          "heldout_accuracy_frozen_dln": accuracy(taught),
          "heldout_accuracy_ce": accuracy(ce_student)}


def main(argv=None):
  args = parse_args(argv)
  out = {}
  for set_and_student in args.sets.split(","):
    out[set_and_student] = {
        scale: run(set_and_student, float(scale), args)
        for scale in args.scales.split(",")}
    print(json.dumps({set_and_student: out[set_and_student]}), flush=True)
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  main()
