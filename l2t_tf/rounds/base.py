"""The round protocol: what the loop asks of a round, and its result.

A round is one step of the teaching loop (`trainer.Trainer`): it takes the
round's training batches, xs and ys of shape [stages, N, B, ...] (`stages`
blocks of N student steps, see `data.splits.round_batches`) and one
validation batch, trains the student (and the comparison student on the
same batches) and returns a `RoundResult`. The round *is* the method,
bound in gin (`build.round = @L2TRound`) and built by `build` from
`RoundParts`; each validates its own options once, and every one is a
`Round` composed of the parts in `rounds.parts`:

* `FixedLossRound` (`fixed_loss.py`): a hand-designed loss, no teaching.
* `HypergradientRound` (`hypergradient_round.py`): stage I+II with
  de_1/dphi and an updater's step on phi (optimisers of Table 6, L2T-DLF).
* `L2TRound` (`l2t.py`): the paper's Algorithm 1, the LSTM teacher also
  learning in stage III.
* `ControllerRound` (`controller.py`): an updater that sees only the
  validation metric (ALA).

`Round` below is what the loop asks of a round (the protocol): its
`stages`, `students()`, `checkpoint_items()`, `epoch_metrics()`,
`summary()` and traces; the loop never inspects a round's class.

Each stage runs in a `tf.function` (loops of student steps through
`hypergradient.function`) on the student's shard (`rounds.runner`).
"""
import dataclasses
import time
from typing import Any, ClassVar, Mapping, Optional

import tensorflow as tf

from l2t_tf import checkpointing
from l2t_tf.rounds import parts as parts_lib
from l2t_tf.rounds import runner

MEAN = runner.MEAN
shard = runner.shard
StudentRunner = runner.StudentRunner


def blocks(train_batches, stages):
  """The round's `stages` blocks of N batches ([N, B, ...] each)."""
  return [tf.nest.map_structure(lambda t, i=i: t[i], train_batches)
          for i in range(stages)]


def steps_in(block):
  """N, the student steps of one block of batches."""
  return tf.nest.flatten(block)[0].shape[0]


@dataclasses.dataclass(frozen=True)
class RoundResult:
  """What one round did.

  Attributes:
    train_loss: mean loss of the student's first block of steps.
    student_steps: SGD steps the (taught) student took in this round.
    round_time_s: wall time of the round.
    skipped_updates: updates skipped for a non-finite hypergradient.
    diagnostics: per-round floats of the method (e1, e2, teacher_cosine, ...).
    comparison_loss: the comparison student's mean loss, if it trained.
  """
  train_loss: float
  student_steps: int
  round_time_s: float
  skipped_updates: int = 0
  diagnostics: Mapping[str, float] = dataclasses.field(default_factory=dict)
  comparison_loss: Optional[float] = None

  def metrics(self):
    """Every scalar as one flat dict (summaries, history)."""
    metrics = dict(self.diagnostics, train_loss=self.train_loss,
                   student_steps=float(self.student_steps),
                   skipped_updates=self.skipped_updates,
                   round_time_s=self.round_time_s)
    if self.comparison_loss is not None:
      metrics["comparison_train_loss"] = self.comparison_loss
    return metrics


@dataclasses.dataclass(frozen=True)
class RoundParts:
  """What `build` makes before a round: the round builds the rest itself.

  Attributes:
    strategy: the `tf.distribute.Strategy`.
    task: the `tasks.base.Task`.
    student: the student, a Keras model.
    learning_rate: the students' SGD learning rate.
    dln: the DLN layer (None unless the round's class `teaches`).
    comparison_student: the CE twin (same initial weights), or None.
    dln_warm_start: fit the DLN to a proper loss before teaching.
  """
  strategy: Any
  task: Any
  student: Any
  learning_rate: float
  dln: Any = None
  comparison_student: Any = None
  dln_warm_start: bool = False


class Round:
  """Base of the rounds and the protocol the loop uses.

  Subclasses set `teaches` and `method`, build their parts in `__init__`
  (after `super().__init__(parts)`) and implement `_run(blocks,
  validation_batch, progress, student_steps) -> RoundResult`.
  """
  #: Whether the round changes a DLN (`build` makes one only then).
  teaches: ClassVar[bool] = False
  #: The results' `method` ('l2t_dln' or 'fixed_loss').
  method: ClassVar[str] = "fixed_loss"
  #: Blocks of N batches a round consumes (`data.splits.round_batches`).
  stages = 2
  dln = None
  updater = None

  def __init__(self, parts):
    self.strategy, self.task = parts.strategy, parts.task
    self.learning_rate = parts.learning_rate
    self.runner = StudentRunner(parts.strategy, parts.student,
                                parts.learning_rate)
    self.compiled = parts_lib.Compiled()
    self.twin = parts_lib.ComparisonTwin(parts, self.compiled)

  # ---- the protocol -----------------------------------------------------
  def students(self):
    """{"student": model, "comparison student": model (if trained)}."""
    return {"student": self.runner.model, **self.twin.students()}

  def checkpoint_items(self):
    """{name: trackable} of everything the round trains (by name)."""
    items = {"student": self.runner.model, **self.twin.checkpoint_items()}
    layer = self.task.fixed_loss_layer()
    if layer is not None:
      items["fixed_loss"] = checkpointing.layer_variables(layer)
    return items

  def epoch_metrics(self):
    """Metrics of the round's state at the end of a teacher epoch."""
    return {}

  def summary(self):
    """What the results say about the method at the end of a run."""
    return {"hypergradient_mode": None, "hypergradient_fallback": None,
            "traces": 0}

  def hypergradient_stages(self):
    """The `parts.HypergradientStage`s (a reverse-mode fallback's targets)."""
    return []

  def total_traces(self):
    """Traces of all compiled pieces so far (a round that traced is slow)."""
    return self.compiled.total()

  def state_variables(self):
    """Every variable a round may change."""
    layer = self.task.fixed_loss_layer()
    return (list(self.runner.model.variables) + self.twin.variables() +
            (list(layer.variables) if layer is not None else []))

  def __call__(self, train_batches, validation_batch, progress=0.0,
               student_steps=0):
    """Runs one round; returns a `RoundResult`.

    Args:
      train_batches: (xs, ys) of shape [stages, N, B, ...].
      validation_batch: (x, y) of shape [Bv, ...].
      progress: rounds done / rounds planned, in [0, 1] (for updaters).
      student_steps: SGD steps the student took before this round.
    """
    start = time.perf_counter()
    round_blocks = blocks(train_batches, self.stages)
    result = self._run(round_blocks, validation_batch, progress,
                       student_steps)
    return dataclasses.replace(result,
                               comparison_loss=self.twin.train(round_blocks),
                               round_time_s=time.perf_counter() - start)

  def _run(self, round_blocks, validation_batch, progress, student_steps):
    raise NotImplementedError
