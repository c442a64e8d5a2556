"""Builds an experiment once: models, updater, round, counters, checkpoint.

`build_experiment(task, strategy, ...)` makes, in this order (the order fixes
the draws of Keras' seeded initialisers, so it is part of the contract):
the student, the DLN (checked to return a scalar), the task's learnable
fixed loss if any, the comparison student (a clone of the student with its
initial weights, trained on the task's fixed loss on the same batches: the
CE twin), the updater and its state; then the DLN warm start if asked, the
round (`make_round`: one class per kind of method), the counters and one
`tf.train.Checkpoint` holding everything by name (`checkpointing`).

The trainer, the tools and the tests all use it, so they cannot wire a
method differently.
"""
import dataclasses
from typing import Any, Optional

from absl import logging
import keras
import tensorflow as tf

from l2t_tf import checkpointing
from l2t_tf import dln as dln_lib
from l2t_tf import dln_updaters
from l2t_tf import dln_warm_start
from l2t_tf import errors
from l2t_tf import hypergradient
from l2t_tf import rounds

METHODS = ("l2t_dln", "fixed_loss")
# The values each option of a run may take, by its Trainer argument.
CHOICES = {"method": METHODS, "hypergradient_mode": hypergradient.MODES,
           "stage3": rounds.l2t.STAGE3_MODES,
           "validation_bn_mode": rounds.taught_loss.VALIDATION_BN_MODES}


def make_round(method, strategy, task, student, dln, updater, learning_rate,
               mode="unrolled", stage3="paper", validation_bn_mode="train",
               guard=False, guard_min_properness=None,
               comparison_student=None):
  """The round of `method` and the updater's kind (see `rounds.base`).

  `fixed_loss` gives a `FixedLossRound` (`stage3 = 'release'` makes it take
  N steps per round, as its L2T-DLN twin, and it ignores the teaching
  options, so that a twin can include its L2T-DLN gin file); a
  `TeachingUpdater` an `L2TRound`; a `ControllerUpdater` a `ControllerRound`;
  any other `HypergradientUpdater` a `HypergradientRound`. Teaching options
  that a kind of round does not have are an error, not silently ignored.
  """
  if method == "fixed_loss":
    return rounds.FixedLossRound(strategy, task, student, learning_rate,
                                 stages=1 if stage3 == "release" else 2)
  if isinstance(updater, dln_updaters.TeachingUpdater):
    return rounds.L2TRound(
        strategy, task, student, dln, updater, learning_rate, mode, stage3,
        validation_bn_mode, guard, guard_min_properness, comparison_student)
  name = type(updater).__name__
  if stage3 != "paper" or guard or guard_min_properness is not None:
    raise errors.UserError(
        f"stage3 = 'release' and update_guard need an updater that learns in "
        f"stage III (the LSTM teacher, @TeacherUpdater); {name} does not.")
  if isinstance(updater, dln_updaters.ControllerUpdater):
    return rounds.ControllerRound(strategy, task, student, dln, updater,
                                  learning_rate, validation_bn_mode,
                                  comparison_student)
  if isinstance(updater, dln_updaters.HypergradientUpdater):
    return rounds.HypergradientRound(strategy, task, student, dln, updater,
                                     learning_rate, mode, validation_bn_mode,
                                     comparison_student)
  _check_updater(updater)


def _check_updater(updater):
  """Raises a UserError unless `updater` is of a kind a round can run."""
  if not isinstance(updater, (dln_updaters.HypergradientUpdater,
                              dln_updaters.ControllerUpdater)):
    raise errors.UserError(
        f"Trainer.updater: {type(updater).__name__} is not a DLN updater "
        f"(dln_updaters.HypergradientUpdater or ControllerUpdater).")


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
  """Everything a run trains, and the checkpoint that holds it.

  `dln` and `updater` are None for `method = 'fixed_loss'`;
  `comparison_student` is None unless trained.
  """
  task: Any
  strategy: Any
  method: str
  student: keras.Model
  dln: Optional[keras.layers.Layer]
  updater: Optional[dln_updaters.DLNUpdater]
  comparison_student: Optional[keras.Model]
  round: rounds.base.Round
  counters: Counters
  checkpoint: tf.train.Checkpoint
  warm_start: dict

  @property
  def teaches(self):
    """Whether an updater changes a DLN in this run."""
    return self.updater is not None

  def checkpoint_variables(self):
    """Every variable the checkpoint holds (in its traversal order)."""
    return [t for t in tf.train.TrackableView(self.checkpoint).descendants()
            if isinstance(t, (tf.Variable, keras.Variable))]


def _build_models(task, strategy, method, updater, train_comparison):
  """(student, dln, comparison_student, updater) inside the scope."""
  with strategy.scope():
    student = task.build_student()
    dln = updater_instance = None
    if method == "l2t_dln":
      dln = task.build_dln()
      dln_lib.check_scalar_loss(dln, *task.dummy_batch(student),
                                student_loss=task.student_loss)
    task.fixed_loss_layer()  # Builds a learnable fixed loss in scope.
    comparison = None
    if train_comparison and method == "l2t_dln":
      comparison = task.clone_student(student)
    if dln is not None:
      updater_instance = updater() if isinstance(updater, type) else updater
      _check_updater(updater_instance)
      updater_instance.build(dln.trainable_variables)
  return student, dln, comparison, updater_instance


def _warm_start(dln, enabled):
  """Fits the DLN to a proper loss before teaching (`dln_warm_start`)."""
  if not enabled or dln is None:
    return {}  # A fixed-loss run has no DLN to teach.
  if not isinstance(dln, dln_lib.PairwiseDLN):
    raise errors.UserError(
        f"Trainer.dln_warm_start fits a PairwiseDLN; this task's DLN is a "
        f"{type(dln).__name__}.")
  fit = dln_warm_start.warm_start(dln)
  logging.info("DLN warm start: %s", fit)
  return fit


def _checkpoint(student, dln, updater, comparison, task, round_, counters):
  """One checkpoint of everything, each part by name."""
  items = dict(student=student, **counters.items())
  if dln is not None:
    items.update(dln=checkpointing.layer_variables(dln), updater=updater,
                 dln_initial=round_.checkpoint_items())
  if comparison is not None:
    items["comparison_student"] = comparison
  if task.fixed_loss_layer() is not None:
    items["fixed_loss"] = checkpointing.layer_variables(
        task.fixed_loss_layer())
  return tf.train.Checkpoint(**items)


def build_experiment(task, strategy, method="l2t_dln",
                     updater=dln_updaters.TeacherUpdater,
                     train_comparison=True, learning_rate=0.1,
                     hypergradient_mode="unrolled", stage3="paper",
                     validation_bn_mode="train", update_guard=False,
                     update_guard_min_properness=None, dln_warm_start=False,
                     seed=0):
  """Builds the `Experiment` of `method` on `task` under `strategy`.

  Args:
    task: a `tasks.base.Task`.
    strategy: a `tf.distribute.Strategy`.
    method: 'l2t_dln' (the student learns from the DLN that `updater`
      changes) or 'fixed_loss' (from `task.fixed_loss`, no DLN).
    updater: a `DLNUpdater` or its class (called without arguments).
    train_comparison: whether to train the comparison student (l2t_dln).
    learning_rate: the students' SGD learning rate.
    hypergradient_mode, stage3, validation_bn_mode, update_guard,
    update_guard_min_properness: the round's options (`make_round`).
    dln_warm_start: fit the DLN to a proper loss first (PairwiseDLN only).
    seed: Keras' global seed, set before anything is built.
  """
  if method not in METHODS:
    raise errors.UserError(f"Trainer.method must be one of {METHODS}, got "
                           f"{method!r}.")
  keras.utils.set_random_seed(int(seed))
  student, dln, comparison, updater = _build_models(
      task, strategy, method, updater, train_comparison)
  warm_start = _warm_start(dln, dln_warm_start)  # Before phi_init is kept.
  counters = Counters()
  round_ = make_round(method, strategy, task, student, dln, updater,
                      learning_rate, hypergradient_mode, stage3,
                      validation_bn_mode, bool(update_guard),
                      update_guard_min_properness, comparison)
  checkpoint = _checkpoint(student, dln, updater, comparison, task, round_,
                           counters)
  return Experiment(task=task, strategy=strategy, method=method,
                    student=student, dln=dln, updater=updater,
                    comparison_student=comparison, round=round_,
                    counters=counters, checkpoint=checkpoint,
                    warm_start=warm_start)
