"""Baseline losses of the paper's Table 1 (issue 5), each a gin binding away.

Bind one as `ClassificationTask.fixed_loss` and run `Trainer.method =
'fixed_loss'` (or keep L2T-DLN and let it be the comparison student's loss):

    # CE
    ClassificationTask.fixed_loss = @cross_entropy
    # smooth 0-1 (Nguyen & Sanner)
    ClassificationTask.fixed_loss = @smooth_01_loss
    # L-Softmax: its loss and its head
    ClassificationTask.fixed_loss = @large_margin_softmax_loss
    ClassificationTask.student = @large_margin_student
    # ARLF (Barron)
    ClassificationTask.fixed_loss = @adaptive_robust_loss()
    # SLF (our reading of Liu & Lai)
    ClassificationTask.fixed_loss = @stochastic_loss_function()

L2T-DLF and ALA teach a parametric loss, so they take the DLN's place in an
'l2t_dln' run (keep `Trainer.method = 'l2t_dln'`):

    # L2T-DLF (our reading of Wu et al.): an MLP teacher of the state sets
    # the loss's (W, b); it learns through one student step
    ClassificationTask.dln = @dlf_loss
    Trainer.updater = @DLFTeacherUpdater
    Trainer.unroll_length = 1
    Trainer.rounds_per_validation_batch = 10  # = the experiment's N: same budget
    # ALA (our reading of Huang et al.): a REINFORCE controller moves the
    # loss's class-pair parameters every 200 student steps
    ClassificationTask.dln = @ala_loss
    Trainer.updater = @ALAControllerUpdater

Plain losses are functions `(y_true int [B], logits [B, C]) -> scalar` (no
parentheses in gin). ARLF and SLF carry trainable parameters, so their
factories are called (`()`) and return Keras layers with the same call
signature; a trainer must optimise `loss.trainable_variables` with the
student (`loss_variables` below), else those parameters stay at their init.
"""
from l2t_tf.related_methods import ala
from l2t_tf.related_methods import l2t_dlf
from l2t_tf.related_methods import large_margin_softmax
from l2t_tf.related_methods import robust_loss
from l2t_tf.related_methods import smooth_01
from l2t_tf.related_methods import stochastic_loss

from l2t_tf.related_methods.ala import ala_loss
from l2t_tf.related_methods.ala import ALAControllerUpdater
from l2t_tf.related_methods.l2t_dlf import dlf_loss
from l2t_tf.related_methods.l2t_dlf import DLFTeacherUpdater
from l2t_tf.related_methods.large_margin_softmax import large_margin_softmax_loss
from l2t_tf.related_methods.large_margin_softmax import large_margin_student
from l2t_tf.related_methods.robust_loss import adaptive_robust_loss
from l2t_tf.related_methods.robust_loss import general_robust_loss
from l2t_tf.related_methods.smooth_01 import smooth_01_loss
from l2t_tf.related_methods.stochastic_loss import stochastic_loss_function


def loss_variables(loss):
  """Trainable parameters of a baseline loss ([] for plain functions)."""
  return list(getattr(loss, "trainable_variables", []))
