"""What every teaching round shares: the student runner, the result, the CE twin.

A round is one step of the teaching loop (`trainer.Trainer`): it takes the
round's training batches, xs and ys of shape [stages, N, B, ...] (`stages`
blocks of N student steps, see `data.splits.round_batches`) and one
validation batch, trains the student (and the comparison student on the
same batches) and returns a `RoundResult`. One subclass per kind of method:

* `FixedLossRound` (`fixed_loss.py`): a hand-designed loss, no teaching.
* `HypergradientRound` (`hypergradient_round.py`): stage I+II with
  de_1/dphi and an updater's step on phi (optimisers of Table 6, L2T-DLF).
* `L2TRound` (`l2t.py`): the paper's Algorithm 1, the LSTM teacher also
  learning in stage III.
* `ControllerRound` (`controller.py`): an updater that sees only the
  validation metric (ALA).

Each stage runs in a `tf.function` (loops of student steps through
`hypergradient.function`) that runs the student's unroll in `strategy.run`
on its shard of the batch and reduces (MEAN) and applies the results in
cross-replica context, so every replica's copies stay identical.
"""
import dataclasses
import time
from typing import Mapping, Optional

import tensorflow as tf

from l2t_tf import errors
from l2t_tf import hypergradient

MEAN = tf.distribute.ReduceOp.MEAN


def shard(nest, axis):
  """This replica's slice of a global batch along `axis`."""
  ctx = tf.distribute.get_replica_context()
  replicas = ctx.num_replicas_in_sync
  if replicas == 1:
    return nest

  def one(t):
    shape = t.shape.as_list()
    if shape[axis] % replicas:
      raise errors.UserError(f"batch size {shape[axis]} is not divisible by "
                             f"the {replicas} replicas.")
    t = tf.reshape(t, shape[:axis] + [replicas, shape[axis] // replicas] +
                   shape[axis + 1:])
    return tf.gather(t, ctx.replica_id_in_sync_group, axis=axis)

  return tf.nest.map_structure(one, nest)


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


class StudentRunner:
  """Runs a Keras student functionally under a strategy and writes back."""

  def __init__(self, strategy, student, learning_rate):
    self.strategy, self.student = strategy, student
    self.learning_rate = learning_rate
    self.apply = hypergradient.stateless_apply(student)

  def weights(self):
    return ([v.value for v in self.student.trainable_variables],
            [v.value for v in self.student.non_trainable_variables])

  def assign(self, trainable, non_trainable):
    """Writes reduced per-replica weights back (cross-replica context)."""
    pairs = list(zip(self.student.trainable_variables, trainable)) + list(
        zip(self.student.non_trainable_variables, non_trainable))
    for var, value in pairs:
      var.assign(self.strategy.reduce(MEAN, value, axis=None))

  def plain_steps(self, loss_fn, batches, loss_layer=None):
    """N SGD steps on `loss_fn`; returns the mean loss (cross-replica).

    If `loss_layer` (a Keras layer computing the loss) has trainable
    parameters, they take the same SGD steps as the student.
    """
    loss_vars = list(loss_layer.trainable_variables) if loss_layer else []
    apply, num_student = self.apply, len(self.student.trainable_variables)
    if loss_vars:
      apply, loss_fn = self._with_loss_parameters(loss_layer, num_student)

    def replica_fn(batches):
      theta, state = self.weights()
      theta += [v.value for v in loss_vars]
      return hypergradient.sgd_steps(apply, theta, state, loss_fn,
                                     shard(batches, 1), self.learning_rate)
    theta, state, loss = self.strategy.run(replica_fn, (batches,))
    self.assign(theta[:num_student], state)
    for var, value in zip(loss_vars, theta[num_student:]):
      var.assign(self.strategy.reduce(MEAN, value, axis=None))
    return self.strategy.reduce(MEAN, loss, axis=None)

  def _with_loss_parameters(self, loss_layer, num_student):
    """(apply, loss) over [theta, loss parameters] for joint SGD."""
    def apply(trainable, non_trainable, x, training):
      outputs, state = self.apply(trainable[:num_student], non_trainable, x,
                                  training)
      return (outputs, trainable[num_student:]), state

    def loss(y, outputs_and_parameters):
      outputs, parameters = outputs_and_parameters
      fixed = [v.value for v in loss_layer.non_trainable_variables]
      return loss_layer.stateless_call(parameters, fixed, y, outputs)[0]
    return apply, loss


class Round:
  """Base of the rounds: the student, the comparison student, traces.

  Subclasses implement `_run(blocks, validation_batch, progress,
  student_steps) -> RoundResult` and set `stages`.
  """
  #: Blocks of N batches a round consumes (`data.splits.round_batches`).
  stages = 2

  def __init__(self, strategy, task, student, learning_rate,
               comparison_student=None):
    self.strategy, self.task = strategy, task
    self.student = StudentRunner(strategy, student, learning_rate)
    self.comparison = (StudentRunner(strategy, comparison_student,
                                     learning_rate)
                       if comparison_student is not None else None)
    self._functions = []
    self._discarded_traces = 0  # Of functions rebuilt (see `fallback`).
    if self.comparison is not None:
      self._comparison_steps = self._loop_function(
          lambda b: self.comparison.plain_steps(
              task.fixed_loss, b, task.fixed_loss_layer()))

  def _function(self, fn):
    """`tf.function(fn)`, counted in `total_traces`."""
    function = tf.function(fn)
    self._functions.append(function)
    return function

  def _loop_function(self, fn):
    """A function running student steps in a while loop (issue 13)."""
    function = hypergradient.function(fn)
    self._functions.append(function)
    return function

  def total_traces(self):
    """Traces of all compiled pieces so far (a round that traced is slow)."""
    return self._discarded_traces + sum(
        f.experimental_get_tracing_count() for f in self._functions)

  def state_variables(self):
    """Every variable a round may change."""
    variables = list(self.student.student.variables)
    if self.comparison is not None:
      variables += list(self.comparison.student.variables)
    layer = self.task.fixed_loss_layer()
    return variables + (list(layer.variables) if layer is not None else [])

  def _train_comparison(self, round_blocks):
    """The comparison student's steps on the round's batches (CE twin)."""
    if self.comparison is not None:
      losses = [float(self._comparison_steps(b)) for b in round_blocks]
      self._comparison_loss = sum(losses) / len(losses)

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
    self._comparison_loss = None
    result = self._run(blocks(train_batches, self.stages), validation_batch,
                       progress, student_steps)
    return dataclasses.replace(result, comparison_loss=self._comparison_loss,
                               round_time_s=time.perf_counter() - start)

  def _run(self, round_blocks, validation_batch, progress, student_steps):
    raise NotImplementedError
