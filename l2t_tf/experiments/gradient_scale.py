r"""Each Table 1 loss's student gradient at initialisation, against CE's.

  python tools/gradient_scale.py                 # every digits method, JSON
  python tools/gradient_scale.py --methods=ce,arlf,ala --batches=20

For each method's digits gin file: build its run as `python -m l2t_tf.main`
would (same seed, student, loss at its initial parameters; L2T-DLN's DLN
after its warm start), take the first `--batches` training batches of teacher
epoch 1, and compare, on each batch and at the initial student weights, the
gradient of the method's student loss with the gradient of cross-entropy:

  norm_ratio  = |grad L_method| / |grad CE|        (1: CE's step size)
  cosine      = <grad L_method, grad CE> / (|.| |.|)

(means over batches). A ratio well below 1 means that at the same learning
rate the method's student starts as if trained with a learning rate that
many times smaller: issue 16's first explanation of a slow baseline.
Prints one JSON object {method: {...}}.
"""
import argparse
import json
import tempfile

import gin
import numpy as np
import tensorflow as tf

from l2t_tf import config
from l2t_tf import build
from l2t_tf.experiments import compare_methods
from l2t_tf.tasks import classification


def student_loss_fn(trainer):
  """The loss the run's student learns from, as f(y, logits)."""
  if trainer.dln is None:
    return trainer.task.fixed_loss
  return lambda y, outputs: trainer.task.student_loss(trainer.dln, y, outputs)


def first_batches(trainer, count):
  """The first `count` (x, y) training batches of teacher epoch 1."""
  rounds, _ = trainer.epoch_rounds(0)
  batches = []
  for (xs, ys), _ in rounds:
    xs = tf.reshape(xs, [-1] + xs.shape[2:].as_list())
    ys = tf.reshape(ys, [-1] + ys.shape[2:].as_list())
    batches += [(xs[i], ys[i]) for i in range(xs.shape[0])]
    if len(batches) >= count:
      return batches[:count]
  return batches


def _cross_entropy(task):
  """CE on the logits (a large-margin student's are a dict in training)."""
  return lambda y, outputs: task.validation_error(
      y, outputs["logits"] if isinstance(outputs, dict) else outputs)


def _flat_gradient(student, loss_fn, x, y):
  with tf.GradientTape() as tape:
    loss = loss_fn(y, student(x, training=True))
  grads = tape.gradient(loss, student.trainable_variables)
  return float(loss), tf.concat(
      [tf.reshape(tf.cast(g, tf.float64), [-1]) for g in grads], 0)


def measure(gin_file, batches, extra_bindings=()):
  """{loss, norm_ratio, cosine, ...}: means over batches, at initialisation."""
  with tempfile.TemporaryDirectory() as model_dir:
    config.parse([gin_file], list(extra_bindings) + [
        f"train_eval.model_dir = '{model_dir}'", "Trainer.progress = False"])
    task = classification.ClassificationTask()  # Every digits file's.
    trainer = build.build(task, model_dir, tf.distribute.get_strategy())
    loss_fn = student_loss_fn(trainer)
    rows = []
    for x, y in first_batches(trainer, batches):
      loss, g = _flat_gradient(trainer.student, loss_fn, x, y)
      ce, g_ce = _flat_gradient(trainer.student, _cross_entropy(task), x, y)
      norm, norm_ce = float(tf.norm(g)), float(tf.norm(g_ce))
      rows.append((loss, ce, norm, norm_ce, float(
          tf.reduce_sum(g * g_ce)) / max(norm * norm_ce, 1e-30)))
  gin.clear_config()  # Unlocked, and no binding to the deleted model_dir.
  loss, ce, norm, norm_ce, cosine = np.mean(rows, axis=0)
  return {"loss": loss, "cross_entropy": ce, "gradient_norm": norm,
          "ce_gradient_norm": norm_ce, "norm_ratio": norm / norm_ce,
          "cosine": cosine, "batches": len(rows)}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  keys = [key for key, _, _ in compare_methods.DIGITS_METHODS]
  parser.add_argument("--methods", default=",".join(keys))
  parser.add_argument("--batches", type=int, default=10)
  parser.add_argument("--gin_bindings", action="append", default=[])
  args = parser.parse_args(argv)
  files = {key: gin for key, _, gin in compare_methods.DIGITS_METHODS}
  unknown = sorted(set(args.methods.split(",")) - set(files))
  if unknown:
    parser.error(f"--methods: unknown {unknown}; choose from {keys}")
  results = {key: measure(files[key], args.batches, args.gin_bindings)
             for key in args.methods.split(",")}
  print(json.dumps(results, indent=1))
  return results


if __name__ == "__main__":
  main()
