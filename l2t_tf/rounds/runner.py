"""The student run functionally under a strategy: its shard, steps, write-back.

Every stage of a round runs the student's unroll in `strategy.run` on this
replica's shard of the batch (`shard`), then reduces (MEAN) and writes the
results back in cross-replica context, so every replica's copies stay
identical.
"""
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


class StudentRunner:
  """Runs a Keras student (`model`) functionally under a strategy, writes back."""

  def __init__(self, strategy, student, learning_rate):
    self.strategy, self.model = strategy, student
    self.learning_rate = learning_rate
    self.apply = hypergradient.stateless_apply(student)

  def weights(self):
    return ([v.value for v in self.model.trainable_variables],
            [v.value for v in self.model.non_trainable_variables])

  def assign(self, trainable, non_trainable):
    """Writes reduced per-replica weights back (cross-replica context)."""
    pairs = list(zip(self.model.trainable_variables, trainable)) + list(
        zip(self.model.non_trainable_variables, non_trainable))
    for var, value in pairs:
      var.assign(self.strategy.reduce(MEAN, value, axis=None))

  def plain_steps(self, loss_fn, batches, loss_layer=None):
    """N SGD steps on `loss_fn`; returns the mean loss (cross-replica).

    If `loss_layer` (a Keras layer computing the loss) has trainable
    parameters, they take the same SGD steps as the student.
    """
    loss_vars = list(loss_layer.trainable_variables) if loss_layer else []
    apply, num_student = self.apply, len(self.model.trainable_variables)
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
