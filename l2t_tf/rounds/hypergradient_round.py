"""A round whose updater steps on the hypergradient de_1/dphi (Eq. 2-6).

Stage I+II: theta_0 -> theta_N by N SGD steps on L_phi0 while computing
e_1 = e_val(theta_N) and de_1/dphi_0 (one `hypergradient.unroll`, in
`hypergradient_mode` 'unrolled' or 'reverse'); the updater sets phi_1 from
it (an optimiser of Table 6, or L2T-DLF's teacher). Then N plain steps on
L_phi1. Between the two, Python checks that the hypergradient is finite; a
NaN/Inf skips that update (and is counted). `rounds.fallback` retries the
first rounds in reverse mode if unrolled mode fails in TensorFlow.
"""
import gin

from l2t_tf import dln_updaters
from l2t_tf import hypergradient
from l2t_tf.rounds import base
from l2t_tf.rounds import parts as parts_lib


class TaughtRound(base.Round):
  """What the rounds that change a DLN share (composition of parts).

  Builds the updater (checked against `interface`), warm-starts the DLN if
  asked, `taught` (L_phi, phi's start) and `plain` (N steps on L_phi);
  answers the loop's questions about the DLN (checkpoint, properness,
  relative change, the warm start's fit).
  """
  teaches = True
  method = "l2t_dln"

  def __init__(self, parts, updater, interface, validation_bn_mode,
               configurable):
    self.validation_training = parts_lib.validation_training(
        configurable, validation_bn_mode)
    super().__init__(parts)
    self.dln = parts.dln
    self.updater = parts_lib.make_updater(configurable, updater, interface,
                                          parts.dln, parts.strategy)
    self.warm_start = parts_lib.warm_start(parts.dln, parts.dln_warm_start)
    self.taught = parts_lib.TaughtLoss(parts.strategy, parts.task, parts.dln)
    self._plain = self.compiled.loop(lambda b: self.runner.plain_steps(
        self.taught.loss, b))

  def checkpoint_items(self):
    items = super().checkpoint_items()
    dln_items = self.taught.checkpoint_items()
    return dict(items, dln=dln_items["dln"], updater=self.updater,
                dln_initial=dln_items["dln_initial"])

  def state_variables(self):
    return (super().state_variables() + list(self.dln.variables) +
            list(self.updater.variables) +
            list(self.updater.optimizer_variables()))

  def epoch_metrics(self):
    return self.taught.properness_metrics()

  def summary(self):
    stages = self.hypergradient_stages()
    return dict(super().summary(), **self.taught.summary(), **self.warm_start,
                hypergradient_mode=stages[0].mode if stages else None,
                traces=sum(s.trace_count for s in stages))

  def _result(self, train_loss, student_steps, metrics, skipped=0):
    return base.RoundResult(train_loss=float(train_loss),
                            student_steps=int(student_steps),
                            round_time_s=0.0, skipped_updates=skipped,
                            diagnostics=self.taught.diagnostics(metrics))


@gin.configurable(denylist=["parts", "configurable"])
class HypergradientRound(TaughtRound):
  """Stage I+II with de_1/dphi and the updater's step, then N plain steps."""

  def __init__(self, parts, *, updater=dln_updaters.OptimizerUpdater,
               hypergradient_mode="unrolled", validation_bn_mode="train",
               configurable="HypergradientRound"):
    hypergradient.check_mode(hypergradient_mode,
                             f"{configurable}.hypergradient_mode")
    super().__init__(parts, updater, dln_updaters.HypergradientUpdater,
                     validation_bn_mode, configurable)
    self.stage1 = parts_lib.HypergradientStage(
        self.compiled, self.runner, self.taught, hypergradient_mode,
        self.validation_training)
    self._stage_one = parts_lib.StageOne(self.stage1, self.taught,
                                         self.updater, self.compiled)

  def hypergradient_stages(self):
    return [self.stage1]

  def _run(self, round_blocks, validation_batch, progress, student_steps):
    first, second = round_blocks
    s1, metrics, update = self._stage_one(first, validation_batch, progress,
                                          student_steps)
    self._plain(second)
    return self._result(s1["train_loss"], 2 * base.steps_in(first), metrics,
                        skipped=int(update is None))
