"""Small, fast teaching set-ups on digits shared by the trainer tests."""
import functools

import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import build
from l2t_tf.students import digits_cnn
from l2t_tf.tasks import classification

TINY = dict(unroll_length=2, teacher_epochs=2, batch_size=10,
            validation_batch_size=50, rounds_per_epoch=3, progress=False,
            eval_batch_size=400)


def dense_student(input_shape, num_classes, dtype=None):
  """A BatchNorm-free student (replicas then compute identical steps)."""
  return keras.Sequential([
      keras.Input(input_shape, dtype=dtype), keras.layers.Flatten(dtype=dtype),
      keras.layers.Dense(16, activation="tanh", dtype=dtype),
      keras.layers.Dense(num_classes, dtype=dtype)])


def tiny_task(student=None, **kwargs):
  student = student or functools.partial(digits_cnn.digits_cnn,
                                         widths=(4, 8, 8))
  return classification.ClassificationTask(dataset="digits", student=student,
                                           **kwargs)


def tiny_trainer(model_dir, task=None, strategy=None, **overrides):
  gin.clear_config()
  settings = dict(TINY, **overrides)
  return build.build(task or tiny_task(), model_dir,
                     strategy or tf.distribute.get_strategy(), **settings)


def state_of(trainer):
  """All learned values: students, DLN, teacher, LSTM state, counters."""
  return [v.numpy() for v in trainer.checkpoint_variables()]


def max_diff(xs, ys, relative=False):
  """max |x - y| over the pairs; relative: each over max(1, max |x|)."""
  def one(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    scale = max(1.0, float(np.max(np.abs(x)))) if relative else 1.0
    return float(np.max(np.abs(x - y))) / scale
  return max(one(x, y) for x, y in zip(xs, ys))


def compare_trainers(single, mirrored, rounds, relative=False):
  """Largest differences of stage I+II on rounds[0], then of full rounds.

  Keys: hypergradient_norm, hypergradient_diff, validation_error_diff,
  round_metric_diff (e1, e2, hypergradient norm), state_diff (every
  checkpointed variable; `relative` as in `max_diff`).
  """
  train, val = rounds[0]
  first = tuple(t[0] for t in train)
  s1 = single.round.inner.stage1(first, val)
  m1 = mirrored.round.inner.stage1(first, val)
  report = {"hypergradient_norm": float(s1["hypergradient_norm"]),
            "hypergradient_diff": max_diff(s1["gradients"], m1["gradients"]),
            "validation_error_diff": abs(float(s1["validation_error"]) -
                                         float(m1["validation_error"]))}
  metric_diffs = []
  for train, val in rounds[1:]:
    a = single.round(train, val).diagnostics
    b = mirrored.round(train, val).diagnostics
    metric_diffs += [abs(a[k] - b[k]) for k in ("e1", "e2",
                                                "hypergradient_norm")]
  report["round_metric_diff"] = max(metric_diffs)
  report["state_diff"] = max_diff(single.checkpoint_variables(),
                                  mirrored.checkpoint_variables(), relative)
  return report


class SpyBuild:
  """The real `build.build`, keeping each run and its initial DLN weights.

  Patch it in for `l2t_tf.train_eval.build_lib.build`; the last run built is
  `SpyBuild.instances[-1]`, its DLN's first weights `SpyBuild.initial_dln`.
  """
  instances = []
  initial_dln = None

  real_build = build.build  # Not the patched attribute (no recursion).

  @classmethod
  def build(cls, *args, **kwargs):
    run = cls.real_build(*args, **kwargs)
    cls.initial_dln = [v.numpy() for v in run.dln.trainable_variables]
    cls.instances.append(run)
    return run
