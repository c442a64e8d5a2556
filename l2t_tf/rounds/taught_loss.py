"""What the rounds that change the DLN share: phi's start, plain steps, results.

The student learns from L_phi (`task.student_loss(dln, y, outputs)`), an
updater changes phi between blocks of steps; `dln_relative_change` is
|phi - phi_init| / |phi_init| since the run began (issue 12), phi_init kept
in variables named like the DLN's (`checkpoint_items`).
"""
import tensorflow as tf

from l2t_tf import checkpointing
from l2t_tf import dln_updaters
from l2t_tf import errors
from l2t_tf.rounds import base

VALIDATION_BN_MODES = ("train", "inference")


class TaughtLossRound(base.Round):
  """Base of the rounds whose student learns from a DLN that an updater moves.

  Subclasses set the functions they need and implement `_run`.
  """

  def __init__(self, strategy, task, student, dln, updater, learning_rate,
               validation_bn_mode="train", comparison_student=None):
    if validation_bn_mode not in VALIDATION_BN_MODES:
      raise errors.UserError(
          f"validation_bn_mode must be one of {VALIDATION_BN_MODES}, got "
          f"{validation_bn_mode!r}.")
    super().__init__(strategy, task, student, learning_rate,
                     comparison_student)
    self.dln, self.updater = dln, updater
    self.validation_training = validation_bn_mode == "train"
    names = {id(v): n for n, v in checkpointing.layer_variables(dln).items()}
    with strategy.scope():  # phi at the start of the run, for diagnostics.
      self.dln_initial = [tf.Variable(v, trainable=False,
                                      name=f"dln_initial_{i}")
                          for i, v in enumerate(dln.trainable_variables)]
    self._initial_by_name = {names[id(v)]: initial for v, initial in zip(
        dln.trainable_variables, self.dln_initial)}
    self._plain = self._loop_function(lambda b: self.student.plain_steps(
        self._train_loss, b))

  def checkpoint_items(self):
    """{name: variable} of phi_init, for the trainer's checkpoint."""
    return dict(self._initial_by_name)

  def state_variables(self):
    variables = super().state_variables() + list(self.dln.variables)
    variables += list(self.updater.variables)
    return variables + list(getattr(self.updater.optimizer, "variables", []))

  def _train_loss(self, y, outputs):
    return self.task.student_loss(self.dln, y, outputs)

  def _progress(self, first, progress, student_steps):
    """The observation's progress and student steps (stage I's included)."""
    return {"progress": tf.constant(float(progress)),
            "student_steps": tf.constant(student_steps + base.steps_in(first),
                                         tf.int64)}

  def _step(self, before):
    """phi - `before` as one flat vector."""
    flat = dln_updaters.flatten
    return (flat([tf.convert_to_tensor(v)
                  for v in self.dln.trainable_variables]) - flat(before))

  def _step_norm(self, before):
    return tf.norm(self._step(before))

  def dln_relative_change(self):
    """|phi - phi_init| / |phi_init| over all DLN coordinates."""
    flat = dln_updaters.flatten
    initial = flat([tf.convert_to_tensor(v) for v in self.dln_initial])
    now = flat([tf.convert_to_tensor(v) for v in self.dln.trainable_variables])
    return float(tf.math.divide_no_nan(tf.norm(now - initial),
                                       tf.norm(initial)))

  def _result(self, train_loss, student_steps, metrics, skipped=0):
    """A `RoundResult` with the metrics as floats and phi's change."""
    diagnostics = {k: float(v) for k, v in metrics.items()}
    diagnostics["dln_relative_change"] = self.dln_relative_change()
    return base.RoundResult(train_loss=float(train_loss),
                            student_steps=int(student_steps),
                            round_time_s=0.0, skipped_updates=skipped,
                            diagnostics=diagnostics)
