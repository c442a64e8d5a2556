"""The teaching loop's side effects: callables of a round's or an epoch's output.

As Orbit's `Controller` actions (`Callable[[Output], None]`), an action is
called by the loop (`trainer.Trainer`) with what just happened, never with
the loop itself:

  action(RoundOutput)    after every round: its metrics and position
  action(EpochOutput)    after every teacher epoch (its evaluation), and
                         once with `epochs_done = 0` before the first round
                         of a new run (the state teaching starts from)

Actions are passed to the loop (`build.build(..., actions=...)`, or
`l2t_tf.teach(..., actions=...)`), never added to it afterwards; an action
that holds a resource (the progress bar) is a context manager, entered
for the run (`build.Run.run`). `default_actions` gives the library's: the progress bar,
TensorBoard summaries and the DLN surface of Figure 3 (a PairwiseDLN only).
Checkpoints and history.json are the loop's own (not a matter of choice).
"""
import dataclasses
import sys
from typing import Mapping

import numpy as np
import tensorflow as tf
import tqdm

from l2t_tf import dln as dln_lib
from l2t_tf import loss_surface


@dataclasses.dataclass(frozen=True)
class RoundOutput:
  """What one round did, where the run is after it.

  Attributes:
    epoch: the teacher epoch (0-based) the round belongs to.
    round_in_epoch: rounds done in this epoch, this one included.
    rounds_in_epoch: rounds the epoch has.
    teacher_epochs: teacher epochs the run has.
    rounds_done: rounds done in the run, this one included.
    metrics: the round's flat dict of floats (`RoundResult.metrics`, traced).
  """
  epoch: int
  round_in_epoch: int
  rounds_in_epoch: int
  teacher_epochs: int
  rounds_done: int
  metrics: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class EpochOutput:
  """A teacher epoch's evaluation (`entry`; empty before teaching starts)."""
  epochs_done: int
  entry: Mapping[str, float]


class ProgressBar:
  """A tqdm bar per teacher epoch on stderr (e_val and seconds per round).

  A teaching round shows `e_val=`, its validation error (cross-entropy on
  the round's validation batch for classification) after stage III (`e2`),
  else after stage I (`e1`), and not the student's training loss: that is
  the DLN's output, which is not bounded below and often negative. A round
  without e_val (a fixed loss such as the cross-entropy) shows `loss=`.
  """

  def __init__(self, enabled=True):
    self.enabled, self.bar = enabled, None

  @staticmethod
  def postfix(metrics):
    """The bar's figures of a round: {'e_val' or 'loss': ..., 's': ...}."""
    e_val = metrics.get("e2", metrics.get("e1"))
    if e_val is None:
      shown = {"loss": f"{float(metrics['train_loss']):.3f}"}
    else:
      shown = {"e_val": f"{float(e_val):.3f}"}
    shown["s"] = f"{float(metrics['round_time_s']):.2f}"
    return shown

  def __call__(self, output):
    if isinstance(output, EpochOutput):
      self.close()
      return
    if self.bar is None:  # The epoch's first round (of this process).
      self.bar = tqdm.tqdm(
          total=output.rounds_in_epoch, initial=output.round_in_epoch - 1,
          file=sys.stderr, disable=not self.enabled,
          desc=f"teacher epoch {output.epoch + 1}/{output.teacher_epochs}")
    self.bar.set_postfix(self.postfix(output.metrics), refresh=False)
    self.bar.update(1)  # Draws the bar once, with the new figures.

  def close(self):
    if self.bar is not None:
      self.bar.close()
      self.bar = None

  def __enter__(self):  # The run holds the bar (`build.Run.run`).
    return self

  def __exit__(self, *exc_info):
    self.close()


class Summaries:
  """TensorBoard scalars: round/<metric> per round, epoch/<metric> per epoch.

  Written to the default summary writer (the loop's, a no-op writer on
  workers other than the chief).
  """

  def __call__(self, output):
    if isinstance(output, RoundOutput):
      for name, value in output.metrics.items():
        tf.summary.scalar(f"round/{name}", value, step=output.rounds_done)
      return
    for name, value in output.entry.items():
      if name != "epoch" and np.ndim(value) == 0:
        tf.summary.scalar(f"epoch/{name}", value, step=output.epochs_done)


class DLNSurface:
  """Figure 3: the DLN's weights and a contour image per teacher epoch.

  `loss_surface.save_snapshot` into model_dir and a TensorBoard image, at
  the start of a run (epoch 0) and after every teacher epoch.
  """

  def __init__(self, dln, model_dir):
    self.dln, self.model_dir = dln, model_dir

  def __call__(self, output):
    if not isinstance(output, EpochOutput):
      return
    epoch = output.epochs_done
    loss_surface.save_snapshot(self.dln, self.model_dir, epoch)
    png = loss_surface.contour_png(self.dln, f"DLN, teacher epoch {epoch}")
    tf.summary.image("dln_surface", tf.image.decode_png(png)[None],
                     step=epoch)


def default_actions(round_, model_dir, is_chief, progress=True):
  """The library's actions, in the order they run (see the module)."""
  actions = [ProgressBar(enabled=progress and is_chief), Summaries()]
  if is_chief and round_.teaches and dln_lib.is_pairwise(round_.dln):
    actions.append(DLNSurface(round_.dln, model_dir))
  return actions
