"""`teach`: L2T-DLN on one's own Keras model and data, in a few lines.

    import l2t_tf
    result = l2t_tf.teach(model, (x, y), test_data=(x_test, y_test),
                          model_dir="runs/mine", teacher_epochs=3)
    result.student          # the taught model (the one passed in)
    result.ce_student       # its CE twin: same start, same batches
    result.history          # {"test_accuracy": [per teacher epoch], ...}
    result.results          # everything results.json holds
    result.loss             # the learned DLN as a Keras loss

With noisy labels, give the teacher a small clean set to validate on:
`teach(model, (x_noisy, y_noisy), validation_data=(x_clean, y_clean), ...)`.

It is `python -m l2t_tf.main` with a task of one's own: the recipe (a gin
file, by default `l2t_dln_recipe.gin`, the default job's method) is parsed,
`Trainer` settings given as keyword arguments become bindings, and
`train_eval.train_eval` runs, so everything `main` guarantees holds here:
`model_dir` resumes a run that was stopped (call `teach` again), holds its
lock, gets `results.json` (strict JSON), TensorBoard summaries, checkpoints
and the exported DLN; bad input is a one-line `l2t_tf.UserError`.

Learned_optimization's `Task` and Keras' `fit` are the models: the model
and the data are what `fit` takes; what the method needs beyond them is a
`tasks.supervised.SupervisedTask`, subclassed for other problems
(`task=MyTask`, see `examples/own_task_regression.py`).
"""
import dataclasses
import os
from typing import Any, Optional

import gin
import keras

from l2t_tf import build
from l2t_tf import config
from l2t_tf import errors
from l2t_tf import export
from l2t_tf import train_eval as train_eval_lib
from l2t_tf.tasks import supervised

DEFAULT_RECIPE = "l2t_dln_recipe.gin"
# The settings a keyword argument of `teach` may set (`Trainer.<name>`).
SETTINGS = build.SETTING_NAMES


@dataclasses.dataclass
class TeachingResult:
  """What `teach` returns.

  Attributes:
    student: the taught Keras model.
    ce_student: its CE twin (None if `train_comparison=False`).
    dln: the learned DLN layer (None for a fixed-loss run).
    results: the run's results (as `results.json`; per-epoch entries under
      "history").
  """
  student: keras.Model
  ce_student: Optional[keras.Model]
  dln: Any
  results: dict

  @property
  def history(self):
    """{metric: [value after each teacher epoch]}, as Keras' History."""
    epochs = self.results.get("history", [])
    keys = dict.fromkeys(k for entry in epochs for k in entry)
    return {k: [entry.get(k) for entry in epochs] for k in keys}

  @property
  def loss(self):
    """The learned DLN as a Keras loss (`export.DLNLoss`; a copy)."""
    if self.dln is None:
      raise errors.UserError("this run taught no DLN (method fixed_loss).")
    return export.DLNLoss(self.dln)

  @property
  def model_dir(self):
    return self.results["model_dir"]


def _bindings(settings):
  """'Trainer.<name> = <value>' for each keyword setting."""
  unknown = sorted(set(settings) - set(SETTINGS))
  if unknown:
    raise errors.UserError(
        f"teach() got unknown setting(s) {', '.join(unknown)}; the Trainer's "
        f"settings are {', '.join(SETTINGS)} (others: gin_bindings=[...]).")
  return [f"Trainer.{name} = {value!r}" for name, value in settings.items()]


def _check_strategy():
  try:
    name = gin.query_parameter("get_strategy.name")
  except ValueError:
    return
  if name == "multi_worker":
    raise errors.UserError(
        "teach() runs in one process (one device, or 'mirrored' over its "
        "GPUs); for several machines run python -m l2t_tf.main with a task "
        "of your own (docs/distributed.md).")


def teach(student, train_data, test_data=None, *, model_dir,
          validation_data=None, task=None, augment=None,
          gin_file=DEFAULT_RECIPE, gin_bindings=(), override_config=False,
          round=None, actions=(), **settings):  # pylint: disable=redefined-builtin
  """Teaches `student` on `train_data` with L2T-DLN; returns a TeachingResult.

  Args:
    student: a `keras.Model` returning logits [B, C] (Functional,
      Sequential or subclassed; Keras BatchNormalization is made exact), or
      a function of no argument that builds one (needed with several
      replicas).
    train_data: `(x, y)` arrays or a `tf.data.Dataset` of `(x, y)` examples
      or batches (`data.user_data`); labels are class ids or one-hot rows.
      The teaching loop divides it into the student's training part and the
      teacher's validation part again at every teacher epoch (unless
      `validation_data` is given).
    test_data: the same, for the final figures; None holds out 20 % of
      `train_data`.
    model_dir: where the run lives: checkpoints, results, TensorBoard, the
      exported DLN. Calling `teach` again with it resumes (or reports a
      finished run).
    validation_data: None, or the same as `train_data` (examples not in
      it): a fixed validation set for the teacher, e.g. a small clean,
      class-balanced "trusted" set when `train_data`'s labels are noisy.
      Every teacher epoch then validates on it instead of on a part of
      `train_data` drawn again each epoch (`Trainer.validation_ratio` is
      not used), and the student and its CE twin train on all of
      `train_data` (less `heldout_ratio`'s held-out split, taken from
      `train_data` only). An epoch has len(validation_data) //
      validation_batch_size * rounds_per_validation_batch rounds (or
      `rounds_per_epoch`, which reuses its batches); it needs at least
      `validation_batch_size` examples (100 in the recipe), each checked
      as `train_data`'s and shaped as they are.
    task: a `SupervisedTask` subclass for another problem than
      classification, called as `task(student, train_data, test_data,
      augment=augment)` (and `validation_data=validation_data` if given).
    augment: optional `(x, y, seed) -> (x, y)` training augmentation of one
      example from a stateless [2] int seed.
    gin_file: the recipe: a gin file path or a packaged name (or a list).
    gin_bindings: further gin bindings, e.g. 'TeacherUpdater.lr = 1e-3'.
    override_config: resume `model_dir` although its settings differ.
    round: the method, a round class of `l2t_tf.rounds` (its options bound
      in gin); None: the recipe's (`L2TRound`).
    actions: callables called with each round's and teacher epoch's output
      (`l2t_tf.actions.RoundOutput`, `EpochOutput`), after the library's.
    **settings: `Trainer` settings by name (`SETTINGS`), e.g.
      teacher_epochs=3, unroll_length=5, seed=1, progress=False.
  Raises:
    UserError: a mistake in the arguments, the data or the model (one line).
  """
  files = [gin_file] if isinstance(gin_file, (str, os.PathLike)) else list(
      gin_file)
  config.parse([os.fspath(f) for f in files],
               list(gin_bindings) + _bindings(settings))
  _check_strategy()
  extra = {} if validation_data is None else dict(
      validation_data=validation_data)
  try:
    made = (task or supervised.SupervisedTask)(student, train_data,
                                               test_data, augment=augment,
                                               **extra)
    results = train_eval_lib.train_eval(model_dir=os.fspath(model_dir),
                                        task=made, round=round,
                                        override_config=override_config,
                                        actions=actions)
  except errors.UserError as e:  # One line, without gin's call context.
    message = errors.without_gin_context(e).strip().replace(
        "pass --override_config", "pass override_config=True")
    raise errors.unwrapped_type(e)(message) from None
  return TeachingResult(student=made.student,
                        ce_student=made.comparison_student, dln=made.dln,
                        results=results)
