"""A round for a controller that sees the validation metric, not de/dphi (ALA).

Stage I: N plain student steps on L_phi, then e_1 and the task's validation
metric on the validation batch; the controller (`ControllerUpdater.apply`)
reads them and may change phi; stage II: N more plain steps on the new
L_phi. The comparison student takes the same 2N steps on the fixed loss.
"""
import tensorflow as tf

from l2t_tf.rounds import base
from l2t_tf.rounds import taught_loss


class ControllerRound(taught_loss.TaughtLossRound):
  """Observe, let the controller act, continue (see the module)."""

  def __init__(self, strategy, task, student, dln, updater, learning_rate,
               validation_bn_mode="train", comparison_student=None):
    super().__init__(strategy, task, student, dln, updater, learning_rate,
                     validation_bn_mode, comparison_student)
    self._observe = self._loop_function(self._observe_stage)
    self._apply = self._function(self._apply_update)

  def _observe_stage(self, batches, validation_batch):
    """N plain steps, then e_1 and the metric; cross-replica."""
    train_loss = self.student.plain_steps(self._train_loss, batches)

    def replica_fn(validation_batch):
      x, y = base.shard(validation_batch, 0)
      theta, state = self.student.weights()
      outputs, _ = self.student.apply(theta, state, x,
                                      self.validation_training)
      return (self.task.validation_error(y, outputs),
              self.task.validation_metric(y, outputs))
    error, metric = self.strategy.run(replica_fn, (validation_batch,))
    reduce = lambda t: self.strategy.reduce(base.MEAN, t, axis=None)
    return {"validation_error": reduce(error), "train_loss": train_loss,
            "validation_metric": reduce(metric)}

  def _apply_update(self, observation):
    """The controller's step on phi, plus the step's norm."""
    variables = self.dln.trainable_variables
    before = [tf.identity(v) for v in variables]
    _, metrics = self.updater.apply(variables, observation)
    return dict(metrics, dln_step_norm=self._step_norm(before))

  def _run(self, round_blocks, validation_batch, progress, student_steps):
    first, second = round_blocks
    s1 = self._observe(first, validation_batch)
    observation = dict(s1, **self._progress(first, progress, student_steps))
    metrics = dict(self._apply(observation),
                   validation_metric=s1["validation_metric"],
                   e1=s1["validation_error"])
    self._plain(second)
    self._train_comparison(round_blocks)
    return self._result(s1["train_loss"], 2 * base.steps_in(first), metrics)
