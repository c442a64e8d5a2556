"""The parts rounds are composed of (one idea each).

* `Compiled`: the round's compiled pieces and their traces.
* `ComparisonTwin`: the CE twin's N steps on the task's fixed loss, on the
  same batches as the taught student.
* `TaughtLoss`: L_phi (`task.student_loss(dln, y, outputs)`), phi's start
  phi_init (kept in variables named like the DLN's) and its change
  |phi - phi_init| / |phi_init| (issue 12).
* `HypergradientStage`: one unroll of N steps with e_val and de_val/dphi
  (Eq. 2-6, `hypergradient.unroll`), in 'unrolled' or 'reverse' mode.
* `make_updater`: the round's updater, built inside the strategy scope.
* `warm_start`: the DLN fitted to a proper loss before teaching (ours).
* `updater_step`: an updater's step on phi from the hypergradient, with the
  step's diagnostics.
* `StageOne`: stage I+II and that step (Eq. 2-3), shared by the rounds
  with a hypergradient.
* `progress_observation`: the updater's view of the run's progress.
"""
import inspect

from absl import logging
import tensorflow as tf

from l2t_tf import checkpointing
from l2t_tf import checks
from l2t_tf import dln as dln_lib
from l2t_tf import dln_updaters
from l2t_tf import dln_warm_start
from l2t_tf import errors
from l2t_tf import hypergradient
from l2t_tf import loss_surface
from l2t_tf.rounds import runner as runner_lib

VALIDATION_BN_MODES = ("train", "inference")


def all_finite(tensors):
  return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


def cosine(a, b):
  """cos(a, b) of two flat vectors; 0 if either is zero."""
  a, b = tf.cast(a, tf.float64), tf.cast(b, tf.float64)
  return tf.math.divide_no_nan(tf.reduce_sum(a * b), tf.norm(a) * tf.norm(b))


class Compiled:
  """The round's `tf.function`s, so that the loop can tell a traced round."""

  def __init__(self):
    self.functions, self.discarded_traces = [], 0

  def function(self, fn):
    """`tf.function(fn)`, counted."""
    self.functions.append(tf.function(fn))
    return self.functions[-1]

  def loop(self, fn):
    """A function running student steps in a while loop (issue 13)."""
    self.functions.append(hypergradient.function(fn))
    return self.functions[-1]

  def discard(self, function):
    """Forgets a rebuilt `function`, keeping its traces in the count."""
    self.discarded_traces += function.experimental_get_tracing_count()
    self.functions.remove(function)

  def total(self):
    """Traces of all compiled pieces so far (discarded ones included)."""
    return self.discarded_traces + sum(
        f.experimental_get_tracing_count() for f in self.functions)


class ComparisonTwin:
  """The comparison student: the fixed loss on the round's batches (or none)."""

  def __init__(self, parts, compiled):
    self.runner = None
    if parts.comparison_student is None:
      return
    task = parts.task
    self.runner = runner_lib.StudentRunner(
        parts.strategy, parts.comparison_student, parts.learning_rate)
    self._steps = compiled.loop(lambda b: self.runner.plain_steps(
        task.fixed_loss, b, task.fixed_loss_layer()))

  def train(self, round_blocks):
    """Its steps on every block; the mean loss, or None without a twin."""
    if self.runner is None:
      return None
    losses = [float(self._steps(b)) for b in round_blocks]
    return sum(losses) / len(losses)

  def students(self):
    return {} if self.runner is None else {
        "comparison student": self.runner.model}

  def checkpoint_items(self):
    return {} if self.runner is None else {
        "comparison_student": self.runner.model}

  def variables(self):
    return [] if self.runner is None else list(self.runner.model.variables)


class TaughtLoss:
  """L_phi, the DLN the student learns from, and phi's change since the start.

  Args:
    strategy: creates phi_init in its scope.
    task: gives `student_loss(dln, y, outputs)`.
    dln: the DLN layer.
  """

  def __init__(self, strategy, task, dln):
    self.task, self.dln = task, dln
    self.pairwise = dln_lib.is_pairwise(dln)
    names = {id(v): n for n, v in checkpointing.layer_variables(dln).items()}
    with strategy.scope():  # phi at the start of the run, for diagnostics.
      self.initial = [tf.Variable(v, trainable=False, name=f"dln_initial_{i}")
                      for i, v in enumerate(dln.trainable_variables)]
    self._initial_by_name = {names[id(v)]: initial for v, initial in zip(
        dln.trainable_variables, self.initial)}

  def loss(self, y, outputs):
    """L_phi(y, outputs): the student's training loss."""
    return self.task.student_loss(self.dln, y, outputs)

  def checkpoint_items(self):
    """The DLN and phi_init, each variable by its name in the layer."""
    return {"dln": checkpointing.layer_variables(self.dln),
            "dln_initial": dict(self._initial_by_name)}

  def step(self, before):
    """phi - `before` as one flat vector."""
    flat = dln_updaters.flatten
    return (flat([tf.convert_to_tensor(v)
                  for v in self.dln.trainable_variables]) - flat(before))

  def relative_change(self):
    """|phi - phi_init| / |phi_init| over all DLN coordinates."""
    flat = dln_updaters.flatten
    initial = flat([tf.convert_to_tensor(v) for v in self.initial])
    now = flat([tf.convert_to_tensor(v) for v in self.dln.trainable_variables])
    return float(tf.math.divide_no_nan(tf.norm(now - initial),
                                       tf.norm(initial)))

  def properness_metrics(self):
    """{"dln_properness": ...} for a PairwiseDLN (Figure 3), else {}."""
    if not self.pairwise:
      return {}
    return {"dln_properness": loss_surface.properness(self.dln)}

  def summary(self):
    return dict(self.properness_metrics(),
                dln_relative_change=self.relative_change())

  def diagnostics(self, metrics):
    """A round's `metrics` as floats, with phi's relative change."""
    return dict({k: float(v) for k, v in metrics.items()},
                dln_relative_change=self.relative_change())


def validation_training(configurable, validation_bn_mode):
  """Whether e_val runs the student in training mode (BatchNorm's batch)."""
  checks.one_of(f"{configurable}.validation_bn_mode", validation_bn_mode,
                VALIDATION_BN_MODES)
  return validation_bn_mode == "train"


def make_updater(configurable, updater, interface, dln, strategy):
  """The round's updater (a class is called), built in `strategy`'s scope.

  Raises:
    UserError: `updater` does not have the round's `interface`.
  """
  with strategy.scope():
    instance = updater() if inspect.isclass(updater) else updater
    if not isinstance(instance, interface):  # A check, never a dispatch.
      raise errors.UserError(
          f"{configurable}.updater: {type(instance).__name__} is not a DLN "
          f"updater of this round (a dln_updaters.{interface.__name__}).")
    instance.build(dln.trainable_variables)
  return instance


def warm_start(dln, enabled):
  """Fits the DLN to a proper loss (`dln_warm_start`); the fit's figures.

  Before phi_init is kept, after the updater is built (the seeded order).
  """
  if not enabled:
    return {}
  if not dln_lib.is_pairwise(dln):
    raise errors.UserError(
        f"Trainer.dln_warm_start fits a PairwiseDLN; this task's DLN is a "
        f"{type(dln).__name__}.")
  fit = dln_warm_start.warm_start(dln)
  logging.info("DLN warm start: %s", fit)
  return fit


class HypergradientStage:
  """N steps from the student's weights with e_val and de_val/dphi (Eq. 2-6).

  One `hypergradient.unroll` per call, in `strategy.run` on the replica's
  shard, reduced in cross-replica context. `write_back` writes theta_N to
  the student; `keep_weights` returns it (the guard may return to it).
  `use_reverse_mode` rebuilds the function in reverse mode (issue 13).

  Returns of a call: {"gradients": [like phi], "finite", "hypergradient_norm",
  "validation_error" (e_val), "train_loss" (mean), and with keep_weights
  "trainable", "non_trainable"}.
  """

  def __init__(self, compiled, runner, taught, mode, validation_training,
               write_back=True, keep_weights=False):
    self.compiled, self.runner, self.taught = compiled, runner, taught
    self.mode, self.validation_training = mode, validation_training
    self.write_back, self.keep_weights = write_back, keep_weights
    self.trace_count = 0  # Traces of this stage (over both modes).
    self.function = compiled.loop(self._stage)

  def __call__(self, batches, validation_batch):
    return self.function(batches, validation_batch)

  def use_reverse_mode(self):
    """Rebuilds the stage in reverse mode (exact too, memory flat in N)."""
    self.compiled.discard(self.function)
    self.mode = "reverse"
    self.function = self.compiled.loop(self._stage)

  def _stage(self, batches, validation_batch):
    """One unroll with hypergradient; cross-replica. Traced once per shape."""
    self.trace_count += 1  # Python side effect: counts traces, not calls.
    runner, strategy = self.runner, self.runner.strategy
    task = self.taught.task

    def replica_fn(batches, validation_batch):
      theta, state = runner.weights()
      result = hypergradient.unroll(
          runner.apply, theta, state, self.taught.loss,
          task.validation_error, runner_lib.shard(batches, 1),
          runner_lib.shard(validation_batch, 0), runner.learning_rate,
          self.taught.dln.trainable_variables, self.mode,
          self.validation_training)
      return result._asdict()

    result = strategy.run(replica_fn, (batches, validation_batch))
    if self.write_back:
      runner.assign(result["trainable"], result["non_trainable"])
    reduce = lambda t: strategy.reduce(runner_lib.MEAN, t, axis=None)
    gradients = [reduce(g) for g in result["gradients"]]
    weights = {}
    if self.keep_weights:  # The guard may return to stage I's student.
      weights = {"trainable": [reduce(t) for t in result["trainable"]],
                 "non_trainable": [reduce(t) for t in result["non_trainable"]]}
    return {"gradients": gradients, **weights,
            "finite": all_finite(gradients),
            "hypergradient_norm": tf.linalg.global_norm(gradients),
            "validation_error": reduce(result["validation_error"]),
            "train_loss": reduce(result["train_loss"])}


def updater_step(compiled, taught, updater):
  """The updater's step on phi from de/dphi, compiled, with its diagnostics.

  Returns a function (gradients, observation) -> ((context, phi_0),
  metrics): `dln_step_norm` and `teacher_cosine`, the cosine between the
  step phi_1 - phi_0 and -de_1/dphi_0 (> 0: a descent step; issue 12).
  """
  def step(gradients, observation):
    variables = taught.dln.trainable_variables
    before = [tf.identity(v) for v in variables]
    context, metrics = updater.apply(variables, gradients, observation)
    change = taught.step(before)
    metrics = dict(metrics, dln_step_norm=tf.norm(change),
                   teacher_cosine=cosine(change,
                                         -dln_updaters.flatten(gradients)))
    return (context, before), metrics
  return compiled.function(step)


def progress_observation(first, progress, student_steps):
  """The observation's progress and student steps (stage I's included)."""
  return {"progress": tf.constant(float(progress)),
          "student_steps": tf.constant(
              student_steps + tf.nest.flatten(first)[0].shape[0], tf.int64)}


class StageOne:
  """Stage I+II and the updater's step: de_1/dphi_0, then phi_1 (Eq. 2-3).

  A call returns (s1, metrics, update): the stage's outputs, the round's
  metrics so far (`e1`, `hypergradient_norm`, the updater's) and
  (context, phi_0), or None if the hypergradient was not finite (the
  update is skipped; Python checks between the two compiled pieces).
  """

  def __init__(self, stage, taught, updater, compiled):
    self.stage = stage
    self._update = updater_step(compiled, taught, updater)

  def __call__(self, first, validation_batch, progress, student_steps):
    s1 = self.stage(first, validation_batch)
    metrics = {"hypergradient_norm": s1["hypergradient_norm"],
               "e1": s1["validation_error"]}
    if not bool(s1["finite"]):
      return s1, metrics, None
    observation = {"validation_error": s1["validation_error"],
                   "train_loss": s1["train_loss"],
                   **progress_observation(first, progress, student_steps)}
    update, update_metrics = self._update(s1["gradients"], observation)
    metrics.update(update_metrics)
    return s1, metrics, update
