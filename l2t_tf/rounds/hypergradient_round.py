"""A round whose updater steps on the hypergradient de_1/dphi (Eq. 2-6).

Stage I+II: theta_0 -> theta_N by N SGD steps on L_phi0 while computing
e_1 = e_val(theta_N) and de_1/dphi_0 (one `hypergradient.unroll`, in
`mode` 'unrolled' or 'reverse'); the updater sets phi_1 from it (an
optimiser of Table 6, or L2T-DLF's teacher). Then N plain steps on L_phi1.
Between the two, Python checks that the hypergradient is finite; a NaN/Inf
skips that update (and is counted).

If unrolled mode fails in TensorFlow in the first rounds (issue 13: a graph
optimiser error or out of memory, `FALLBACK_ERRORS`), the round restores
every variable it may have changed (a failed stage can already have written
the student back), switches to reverse mode with one warning
(`fallback_to_reverse`) and runs again; `fallback_reason` says why.
"""
from absl import logging
import tensorflow as tf

from l2t_tf import dln_updaters
from l2t_tf import hypergradient
from l2t_tf import strategy as strategy_lib
from l2t_tf.rounds import base
from l2t_tf.rounds import taught_loss

#: TensorFlow errors of a graph it cannot run (issue 13: a grappler rewrite
#: of the unrolled loop's gradient, or memory) after which the first rounds
#: retry in reverse mode.
FALLBACK_ERRORS = (tf.errors.AlreadyExistsError,
                   tf.errors.ResourceExhaustedError)
#: oneDNN's out of memory on CPU arrives as an AbortedError saying this.
ONEDNN_OUT_OF_MEMORY = "could not create a memory object"
#: Calls guarded so: the failure of issue 13 surfaces at the second call of
#: a function with the same node names, i.e. round 1's stage III, or round 2
#: for an updater without stage III.
FALLBACK_ROUNDS = 2


def is_fallback_error(error):
  """Whether a round failing with `error` retries in reverse mode."""
  if isinstance(error, FALLBACK_ERRORS):
    return True
  return (isinstance(error, tf.errors.AbortedError) and
          ONEDNN_OUT_OF_MEMORY in (error.message or ""))


def all_finite(tensors):
  return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


def cosine(a, b):
  """cos(a, b) of two flat vectors; 0 if either is zero."""
  a, b = tf.cast(a, tf.float64), tf.cast(b, tf.float64)
  return tf.math.divide_no_nan(tf.reduce_sum(a * b), tf.norm(a) * tf.norm(b))


class HypergradientRound(taught_loss.TaughtLossRound):
  """Stage I+II with de_1/dphi and the updater's step, then N plain steps."""

  def __init__(self, strategy, task, student, dln, updater, learning_rate,
               mode="unrolled", validation_bn_mode="train",
               comparison_student=None):
    hypergradient.check_mode(mode, "hypergradient_mode")
    super().__init__(strategy, task, student, dln, updater, learning_rate,
                     validation_bn_mode, comparison_student)
    self.mode = mode
    self.trace_count = 0  # Traces of the stages with a hypergradient.
    #: Why the round left unrolled mode (`fallback_to_reverse`), or None.
    self.fallback_reason = None
    self._calls = 0
    self._stage1 = self._stage3 = None
    self._compile_hyper_stages()
    self._apply = self._function(self._apply_update)

  # ---- stages -----------------------------------------------------------
  def _hyper_stages(self):
    """{name: function of (batches, validation_batch)} of the mode's stages."""
    return {"_stage1": lambda b, v: self._hyper_stage(b, v, write_back=True)}

  def _compile_hyper_stages(self):
    """(Re)builds the functions that depend on `mode`."""
    for name, fn in self._hyper_stages().items():
      setattr(self, name, hypergradient.function(fn))

  def total_traces(self):
    stages = [f for f in (self._stage1, self._stage3) if f is not None]
    return super().total_traces() + sum(
        f.experimental_get_tracing_count() for f in stages)

  def _hyper_stage(self, batches, validation_batch, write_back,
                   keep_weights=False):
    """One unroll with hypergradient; cross-replica. Traced once per shape."""
    self.trace_count += 1  # Python side effect: counts traces, not calls.

    def replica_fn(batches, validation_batch):
      theta, state = self.student.weights()
      result = hypergradient.unroll(
          self.student.apply, theta, state, self._train_loss,
          self.task.validation_error, base.shard(batches, 1),
          base.shard(validation_batch, 0), self.student.learning_rate,
          self.dln.trainable_variables, self.mode, self.validation_training)
      return result._asdict()

    result = self.strategy.run(replica_fn, (batches, validation_batch))
    if write_back:
      self.student.assign(result["trainable"], result["non_trainable"])
    reduce = lambda t: self.strategy.reduce(base.MEAN, t, axis=None)
    gradients = [reduce(g) for g in result["gradients"]]
    weights = {}
    if keep_weights:  # The guard may return to stage I's student.
      weights = {"trainable": [reduce(t) for t in result["trainable"]],
                 "non_trainable": [reduce(t) for t in result["non_trainable"]]}
    return {"gradients": gradients, **weights,
            "finite": all_finite(gradients),
            "hypergradient_norm": tf.linalg.global_norm(gradients),
            "validation_error": reduce(result["validation_error"]),
            "train_loss": reduce(result["train_loss"])}

  def _apply_update(self, gradients, observation):
    """The updater's step on phi, plus the step's diagnostics."""
    variables = self.dln.trainable_variables
    before = [tf.identity(v) for v in variables]
    context, metrics = self.updater.apply(variables, gradients, observation)
    step = self._step(before)
    metrics = dict(metrics, dln_step_norm=tf.norm(step),
                   teacher_cosine=cosine(step,
                                         -dln_updaters.flatten(gradients)))
    return (context, before), metrics

  def _stage_one(self, first, validation_batch, progress, student_steps):
    """Stage I+II and the update: (s1, metrics, (context, phi_0) or None)."""
    s1 = self._stage1(first, validation_batch)
    metrics = {"hypergradient_norm": s1["hypergradient_norm"],
               "e1": s1["validation_error"]}
    if not bool(s1["finite"]):
      return s1, metrics, None
    observation = {"validation_error": s1["validation_error"],
                   "train_loss": s1["train_loss"],
                   **self._progress(first, progress, student_steps)}
    update, update_metrics = self._apply(s1["gradients"], observation)
    metrics.update(update_metrics)
    return s1, metrics, update

  def _run(self, round_blocks, validation_batch, progress, student_steps):
    first, second = round_blocks
    s1, metrics, update = self._stage_one(first, validation_batch, progress,
                                          student_steps)
    self._plain(second)
    self._train_comparison(round_blocks)
    return self._result(s1["train_loss"], 2 * base.steps_in(first), metrics,
                        skipped=int(update is None))

  # ---- issue 13: unrolled mode failing in TensorFlow -------------------
  def _may_fall_back(self):
    """Only unrolled mode, only the first `FALLBACK_ROUNDS` calls and not
    across workers (they would have to switch together)."""
    return (self.mode == "unrolled" and self._calls < FALLBACK_ROUNDS and
            not strategy_lib.is_multi_worker(self.strategy))

  def __call__(self, *args, **kwargs):
    """Runs one round (see `base.Round`), falling back to reverse mode."""
    if not self._may_fall_back():
      self._calls += 1
      return super().__call__(*args, **kwargs)
    variables = self.state_variables()
    saved = [tf.identity(v) for v in variables]
    try:
      result = super().__call__(*args, **kwargs)
      self._calls += 1
      return result
    except tf.errors.OpError as e:
      if not is_fallback_error(e):
        raise
      # Outside this block the error's traceback (and what its frames hold)
      # is freed before the round runs again.
      first_line = ((e.message or "").strip().splitlines() or [""])[0]
      reason = (f"{type(e).__name__} in round {self._calls + 1}: "
                f"{first_line[:300]}")
    for var, value in zip(variables, saved):
      var.assign(value)
    del saved
    self.fallback_to_reverse(reason)
    self._calls += 1
    return super().__call__(*args, **kwargs)

  def fallback_to_reverse(self, reason):
    """Switches the hypergradient to reverse mode (Eq. 4-6, memory flat in N).

    Stages with a hypergradient are rebuilt (a new trace); one warning says
    why.

    Args:
      reason: one line, the error that made unrolled mode fail.
    """
    if self.mode == "reverse":
      raise ValueError("the teaching round is already in reverse mode.")
    logging.warning("Hypergradient: unrolled mode failed (%s); continuing in "
                    "reverse mode (exact too, memory flat in N).", reason)
    self._discarded_traces += sum(
        f.experimental_get_tracing_count() for f in (self._stage1,
                                                     self._stage3) if f)
    self.mode, self.fallback_reason = "reverse", reason
    self._compile_hyper_stages()
