"""`method = 'fixed_loss'`: the student learns from the task's fixed loss.

No DLN, no teacher: each block of N batches is N SGD steps on
`task.fixed_loss` (cross-entropy, or a Table 1 baseline loss, whose
learnable parameters take the same steps), so a `_ce.gin` run sees the same
data, in the same order, as its L2T-DLN twin.
"""
from l2t_tf.rounds import base


class FixedLossRound(base.Round):
  """`stages` blocks of N plain SGD steps on the task's fixed loss."""

  def __init__(self, strategy, task, student, learning_rate, stages=2):
    super().__init__(strategy, task, student, learning_rate)
    self.stages = int(stages)
    self._steps = self._loop_function(lambda b: self.student.plain_steps(
        task.fixed_loss, b, task.fixed_loss_layer()))

  def _run(self, round_blocks, validation_batch, progress, student_steps):
    del validation_batch, progress, student_steps
    losses = [float(self._steps(block)) for block in round_blocks]
    return base.RoundResult(
        train_loss=sum(losses) / len(losses),
        student_steps=sum(base.steps_in(b) for b in round_blocks),
        round_time_s=0.0)
