"""The student learns from the task's fixed loss (the CE twins' runs).

No DLN, no teacher: each block of N batches is N SGD steps on
`task.fixed_loss` (cross-entropy, or a Table 1 baseline loss, whose
learnable parameters take the same steps), so a `_ce.gin` run sees the same
data, in the same order, as its L2T-DLN twin: `stage3 = 'release'` makes a
round one block of N steps, as its L2T-DLN twin's with the release's stage
III.
"""
import gin

from l2t_tf import checks
from l2t_tf.rounds import base
from l2t_tf.rounds import l2t


@gin.configurable(denylist=["parts", "configurable"])
class FixedLossRound(base.Round):
  """`stages` blocks of N plain SGD steps on the task's fixed loss."""

  def __init__(self, parts, *, stage3="paper", configurable="FixedLossRound"):
    checks.one_of(f"{configurable}.stage3", stage3, l2t.STAGE3_MODES)
    super().__init__(parts)
    self.stages = 1 if stage3 == "release" else 2
    task = parts.task
    self._steps = self.compiled.loop(lambda b: self.runner.plain_steps(
        task.fixed_loss, b, task.fixed_loss_layer()))

  def _run(self, round_blocks, validation_batch, progress, student_steps):
    del validation_batch, progress, student_steps
    losses = [float(self._steps(block)) for block in round_blocks]
    return base.RoundResult(
        train_loss=sum(losses) / len(losses),
        student_steps=sum(base.steps_in(b) for b in round_blocks),
        round_time_s=0.0)
