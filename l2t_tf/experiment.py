"""Builds an experiment once: the round (the method), its models, the checkpoint.

`build_experiment(task, strategy, round)` makes, in this order (the order
fixes the draws of Keras' seeded initialisers, so it is part of the
contract, `tests/test_build_contract.py`): the student, the DLN if the
round teaches (checked to return a scalar), the task's learnable fixed loss
if any, the comparison student (a clone of the student with its initial
weights, trained on the task's fixed loss on the same batches: the CE
twin); the counters; the round, which builds its updater, warm-starts the
DLN if asked and keeps phi's start (`rounds`); one `tf.train.Checkpoint`
holding everything by name (`checkpointing`).

`resolve_round` is the one place that knows the older way of choosing a
method: `Trainer.method = 'fixed_loss'` and the round's options bound on
`Trainer` (`Trainer.updater`, `Trainer.stage3`, ...), kept as aliases so
that gin files and `teach(stage3=...)` written before the round was bound
in gin (`build.round = @L2TRound`) still run.

`build.build`, the tools and the tests all use it, so they cannot wire a
method differently.
"""
import dataclasses
import inspect
from typing import Any

import keras
import tensorflow as tf

from l2t_tf import checks
from l2t_tf import dln as dln_lib
from l2t_tf import dln_updaters
from l2t_tf import errors
from l2t_tf import rounds
from l2t_tf.rounds import fallback

METHODS = ("l2t_dln", "fixed_loss")
#: The round options that may be bound on `Trainer` (aliases, see module).
ROUND_OPTIONS = ("updater", "hypergradient_mode", "stage3",
                 "validation_bn_mode", "update_guard",
                 "update_guard_min_properness")


def _round_of(method, updater):
  """The round class of the older `method` / `updater` bindings."""
  if method == "fixed_loss":
    return rounds.FixedLossRound
  name = getattr(updater, "default_round", None)  # A class or an instance.
  if name is None:
    raise errors.UserError(
        f"Trainer.updater: {getattr(updater, '__name__', type(updater).__name__)}"
        f" is not a DLN updater (dln_updaters.HypergradientUpdater or "
        f"ControllerUpdater).")
  return rounds.BY_NAME[name]


def resolve_round(round_class=None, method=None, **options):
  """(round class, its options) of a run.

  `round_class` is the round bound in gin (`build.round`); without
  one, the older bindings choose it (`_round_of`). `options` are those set
  on `Trainer` (bound or passed, None included): they override the round's
  own bindings; a round that does not teach ignores the teaching ones (a
  CE twin includes its L2T-DLN gin file), one that teaches and lacks an
  option is a UserError.
  """
  checks.one_of("Trainer.method", method, METHODS + (None,))
  if round_class is not None and method is not None:
    raise errors.UserError(
        "bind the method once: build.round or Trainer.method, not both.")
  if round_class is None:
    round_class = _round_of(
        method, options.get("updater") or dln_updaters.TeacherUpdater)
  if not round_class.teaches:
    options = {k: v for k, v in options.items() if k == "stage3"}
  accepted = inspect.signature(round_class).parameters
  extra = sorted(k for k in options if k not in accepted)
  if extra:
    raise errors.UserError(
        f"Trainer.{extra[0]} is not an option of {round_class.__name__}: "
        f"stage3 = 'release' and update_guard need an updater that learns in "
        f"stage III (the LSTM teacher, @TeacherUpdater, in L2TRound).")
  if options:
    options["configurable"] = "Trainer"
  return round_class, options


class Counters:
  """Where the run is: plain (not mirrored) int64 variables.

  Kept by Python on every worker, so that int(counter) works under any
  strategy. `student_steps` is counted from each round's own result.
  """
  NAMES = ("epoch", "round_in_epoch", "rounds_done", "student_steps",
           "skipped_updates")

  def __init__(self):
    for name in self.NAMES:
      setattr(self, name, tf.Variable(0, dtype=tf.int64, trainable=False,
                                      name=name))

  def items(self):
    return {name: getattr(self, name) for name in self.NAMES}

  def count(self, result):
    """Adds one round's `RoundResult`."""
    self.round_in_epoch.assign_add(1)
    self.rounds_done.assign_add(1)
    self.student_steps.assign_add(result.student_steps)
    self.skipped_updates.assign_add(result.skipped_updates)


@dataclasses.dataclass
class Experiment:
  """Everything a run trains, and the checkpoint that holds it."""
  task: Any
  strategy: Any
  round: Any
  counters: Counters
  checkpoint: tf.train.Checkpoint

  student = property(lambda self: self.round.students()["student"])
  comparison_student = property(
      lambda self: self.round.students().get("comparison student"))
  dln = property(lambda self: self.round.dln)
  updater = property(lambda self: self.round.updater)
  method = property(lambda self: self.round.method)
  teaches = property(lambda self: self.round.teaches)

  def checkpoint_variables(self):
    """Every variable the checkpoint holds (in its traversal order)."""
    return [t for t in tf.train.TrackableView(self.checkpoint).descendants()
            if isinstance(t, (tf.Variable, keras.Variable))]


def _build_models(task, strategy, teaches, train_comparison):
  """(student, dln, comparison_student) inside the scope."""
  with strategy.scope():
    student = task.build_student()
    dln = None
    if teaches:
      dln = task.build_dln()
      dln_lib.check_scalar_loss(dln, *task.dummy_batch(student),
                                student_loss=task.student_loss)
    task.fixed_loss_layer()  # Builds a learnable fixed loss in scope.
    comparison = None
    if train_comparison and teaches:
      comparison = task.clone_student(student)
  return student, dln, comparison


def build_experiment(task, strategy, round_class=None, *, learning_rate=0.1,
                     train_comparison=True, dln_warm_start=False, seed=0,
                     method=None, **options):
  """Builds the `Experiment` of a round on `task` under `strategy`.

  Args:
    task: a `tasks.base.Task`.
    strategy: a `tf.distribute.Strategy`.
    round_class: a round class of `rounds` (gin-configurable), or None for
      the one `method` and the options choose (`resolve_round`).
    learning_rate: the students' SGD learning rate.
    train_comparison: whether to train the comparison student (if taught).
    dln_warm_start: fit the DLN to a proper loss first (PairwiseDLN only).
    seed: Keras' global seed, set before anything is built.
    method: the older choice, 'l2t_dln' or 'fixed_loss' (or None).
    **options: the round's options set the older way (`ROUND_OPTIONS`).
  """
  round_class, options = resolve_round(round_class, method, **options)
  keras.utils.set_random_seed(int(seed))
  student, dln, comparison = _build_models(task, strategy,
                                           round_class.teaches,
                                           train_comparison)
  counters = Counters()
  parts = rounds.RoundParts(strategy=strategy, task=task, student=student,
                            learning_rate=learning_rate, dln=dln,
                            comparison_student=comparison,
                            dln_warm_start=dln_warm_start)
  round_ = fallback.with_fallback(round_class(parts, **options))
  checkpoint = tf.train.Checkpoint(**round_.checkpoint_items(),
                                   **counters.items())
  return Experiment(task=task, strategy=strategy, round=round_,
                    counters=counters, checkpoint=checkpoint)
