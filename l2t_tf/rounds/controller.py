"""A round for a controller that sees the validation metric, not de/dphi (ALA).

Stage I: N plain student steps on L_phi, then e_1 and the task's validation
metric on the validation batch; the controller (`ControllerUpdater.apply`)
reads them and may change phi; stage II: N more plain steps on the new
L_phi. The comparison student takes the same 2N steps on the fixed loss.
"""
import gin
import tensorflow as tf

from l2t_tf import dln_updaters
from l2t_tf.rounds import base
from l2t_tf.rounds import hypergradient_round
from l2t_tf.rounds import parts as parts_lib


@gin.configurable(denylist=["parts", "configurable"])
class ControllerRound(hypergradient_round.TaughtRound):
  """Observe, let the controller act, continue (see the module)."""

  def __init__(self, parts, *, updater=gin.REQUIRED,
               validation_bn_mode="train", configurable="ControllerRound"):
    super().__init__(parts, updater, dln_updaters.ControllerUpdater,
                     validation_bn_mode, configurable)
    self._observe = self.compiled.loop(self._observe_stage)
    self._apply = self.compiled.function(self._apply_update)

  def _observe_stage(self, batches, validation_batch):
    """N plain steps, then e_1 and the metric; cross-replica."""
    train_loss = self.runner.plain_steps(self.taught.loss, batches)

    def replica_fn(validation_batch):
      x, y = base.shard(validation_batch, 0)
      theta, state = self.runner.weights()
      outputs, _ = self.runner.apply(theta, state, x,
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
    return dict(metrics, dln_step_norm=tf.norm(self.taught.step(before)))

  def _run(self, round_blocks, validation_batch, progress, student_steps):
    first, second = round_blocks
    s1 = self._observe(first, validation_batch)
    observation = dict(s1, **parts_lib.progress_observation(
        first, progress, student_steps))
    metrics = dict(self._apply(observation),
                   validation_metric=s1["validation_metric"],
                   e1=s1["validation_error"])
    self._plain(second)
    return self._result(s1["train_loss"], 2 * base.steps_in(first), metrics)
