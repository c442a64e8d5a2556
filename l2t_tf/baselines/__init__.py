"""Baseline losses of the paper's Table 1 (issue 5), each a gin binding away.

Bind one as `ClassificationTask.baseline_loss` and run `Trainer.method =
'baseline'` (or keep L2T-DLN and let it be the comparison student's loss):

    # CE
    ClassificationTask.baseline_loss = @cross_entropy
    # smooth 0-1 (Nguyen & Sanner)
    ClassificationTask.baseline_loss = @smooth_01_loss
    # L-Softmax: its loss and its head
    ClassificationTask.baseline_loss = @large_margin_softmax_loss
    ClassificationTask.student = @large_margin_student
    # ARLF (Barron)
    ClassificationTask.baseline_loss = @adaptive_robust_loss()
    # SLF (our reading of Liu & Lai)
    ClassificationTask.baseline_loss = @stochastic_loss_function()

Plain losses are functions `(y_true int [B], logits [B, C]) -> scalar` (no
parentheses in gin). ARLF and SLF carry trainable parameters, so their
factories are called (`()`) and return Keras layers with the same call
signature; a trainer must optimise `loss.trainable_variables` with the
student (`loss_variables` below), else those parameters stay at their init.
"""
from l2t_tf.baselines import large_margin_softmax
from l2t_tf.baselines import robust_loss
from l2t_tf.baselines import smooth_01
from l2t_tf.baselines import stochastic_loss

from l2t_tf.baselines.large_margin_softmax import large_margin_softmax_loss
from l2t_tf.baselines.large_margin_softmax import large_margin_student
from l2t_tf.baselines.robust_loss import adaptive_robust_loss
from l2t_tf.baselines.robust_loss import general_robust_loss
from l2t_tf.baselines.smooth_01 import smooth_01_loss
from l2t_tf.baselines.stochastic_loss import stochastic_loss_function


def loss_variables(loss):
  """Trainable parameters of a baseline loss ([] for plain functions)."""
  return list(getattr(loss, "trainable_variables", []))
