"""Issue 13: a round whose unrolled hypergradient fails in TensorFlow retries
in reverse mode.

If unrolled mode fails in the first rounds (a graph optimiser error or out
of memory, `FALLBACK_ERRORS`), `ReverseModeFallback` restores every
variable the round may have changed (a failed stage can already have
written the student back), switches the round's hypergradient stages to
reverse mode with one warning and runs the round again; the results' entry
`hypergradient_fallback` says why. `build` wraps every round that has
hypergradient stages; the wrapper answers the loop's questions as its round.
"""
from absl import logging
import tensorflow as tf

from l2t_tf import strategy as strategy_lib

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


class ReverseModeFallback:
  """A round (`inner`) that falls back to reverse mode (see the module)."""

  def __init__(self, inner):
    self.inner = inner
    self.calls = 0  # Rounds run (the first `FALLBACK_ROUNDS` are guarded).
    #: Why the round left unrolled mode (`fallback_to_reverse`), or None.
    self.fallback_reason = None

  # ---- the round protocol, as the inner round's -------------------------
  teaches = property(lambda self: self.inner.teaches)
  method = property(lambda self: self.inner.method)
  stages = property(lambda self: self.inner.stages)
  dln = property(lambda self: self.inner.dln)
  updater = property(lambda self: self.inner.updater)
  learning_rate = property(lambda self: self.inner.learning_rate)

  def students(self):
    return self.inner.students()

  def checkpoint_items(self):
    return self.inner.checkpoint_items()

  def epoch_metrics(self):
    return self.inner.epoch_metrics()

  def summary(self):
    return dict(self.inner.summary(),
                hypergradient_fallback=self.fallback_reason)

  def hypergradient_stages(self):
    return self.inner.hypergradient_stages()

  def total_traces(self):
    return self.inner.total_traces()

  def state_variables(self):
    return self.inner.state_variables()

  # ---- the fallback -----------------------------------------------------
  def _may_fall_back(self):
    """Only unrolled mode, only the first `FALLBACK_ROUNDS` calls and not
    across workers (they would have to switch together)."""
    return (self.hypergradient_stages()[0].mode == "unrolled" and
            self.calls < FALLBACK_ROUNDS and
            not strategy_lib.is_multi_worker(self.inner.strategy))

  def __call__(self, *args, **kwargs):
    """Runs one round (see `base.Round`), falling back to reverse mode."""
    if not self._may_fall_back():
      self.calls += 1
      return self.inner(*args, **kwargs)
    variables = self.state_variables()
    saved = [tf.identity(v) for v in variables]
    try:
      result = self.inner(*args, **kwargs)
      self.calls += 1
      return result
    except tf.errors.OpError as e:
      if not is_fallback_error(e):
        raise
      # Outside this block the error's traceback (and what its frames hold)
      # is freed before the round runs again.
      first_line = ((e.message or "").strip().splitlines() or [""])[0]
      reason = (f"{type(e).__name__} in round {self.calls + 1}: "
                f"{first_line[:300]}")
    for var, value in zip(variables, saved):
      var.assign(value)
    del saved
    self.fallback_to_reverse(reason)
    self.calls += 1
    return self.inner(*args, **kwargs)

  def fallback_to_reverse(self, reason):
    """Switches the hypergradient to reverse mode (Eq. 4-6, memory flat in N).

    The stages are rebuilt (a new trace); one warning says why.

    Args:
      reason: one line, the error that made unrolled mode fail.
    """
    stages = self.hypergradient_stages()
    if stages[0].mode == "reverse":
      raise ValueError("the teaching round is already in reverse mode.")
    logging.warning("Hypergradient: unrolled mode failed (%s); continuing in "
                    "reverse mode (exact too, memory flat in N).", reason)
    for stage in stages:
      stage.use_reverse_mode()
    self.fallback_reason = reason


def with_fallback(round_):
  """`round_` wrapped in `ReverseModeFallback` if it has hypergradients."""
  return ReverseModeFallback(round_) if round_.hypergradient_stages() else (
      round_)
