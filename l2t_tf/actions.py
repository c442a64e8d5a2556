"""The teaching loop's side effects, as small actions (Orbit style).

`Trainer` runs rounds and teacher epochs and evaluates; everything else it
does through actions, each an object with some of these hooks (the others
are inherited no-ops):

  start(loop)                           once, before the first round
  epoch_start(loop, epoch, rounds)      epoch: 0-based; rounds in the epoch
  round_end(loop, metrics)              metrics: the round's flat dict
  epoch_end(loop, epoch, entry)         entry: the epoch's evaluation
  end(loop)                             once, after the last round

`loop` is the `Trainer` (its experiment, counters, model_dir, save()).
`default_actions` gives the trainer's: the progress bar, TensorBoard
summaries, the history, the DLN surface of Figure 3 (a PairwiseDLN only)
and the checkpoint.
"""
import json
import os
import sys

import numpy as np
import tensorflow as tf
import tqdm

from l2t_tf import dln as dln_lib
from l2t_tf import loss_surface
from l2t_tf import strict_json

#: Per-round diagnostics kept in history.json (issue 12; rounds).
ROUND_DIAGNOSTICS = ("e1", "e2", "e2_minus_e1", "update_helped",
                     "update_accepted", "teacher_cosine", "dln_step_norm",
                     "dln_relative_change", "hypergradient_norm")


class Action:
  """Base of the actions: every hook a no-op."""

  def start(self, loop):
    del loop

  def epoch_start(self, loop, epoch, rounds):
    del loop, epoch, rounds

  def round_end(self, loop, metrics):
    del loop, metrics

  def epoch_end(self, loop, epoch, entry):
    del loop, epoch, entry

  def end(self, loop):
    del loop


class ProgressBar(Action):
  """A tqdm bar per teacher epoch on stderr (e_val and seconds per round).

  A teaching round shows `e_val=`, its validation error (cross-entropy on
  the round's validation batch for classification) after stage III (`e2`),
  else after stage I (`e1`), and not the student's training loss: that is
  the DLN's output, which is not bounded below and often negative. A round
  without e_val (a fixed loss such as the cross-entropy) shows `loss=`.
  """

  def __init__(self, enabled=True):
    self.enabled, self.bar = enabled, None

  def epoch_start(self, loop, epoch, rounds):
    self.bar = tqdm.tqdm(total=rounds, initial=int(loop.counters.round_in_epoch),
                         file=sys.stderr, disable=not self.enabled,
                         desc=f"teacher epoch {epoch + 1}/{loop.teacher_epochs}")

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

  def round_end(self, loop, metrics):
    self.bar.set_postfix(self.postfix(metrics), refresh=False)
    self.bar.update(1)  # Draws the bar once, with the new figures.

  def epoch_end(self, loop, epoch, entry):
    self.end(loop)

  def end(self, loop):
    if self.bar is not None:
      self.bar.close()
      self.bar = None


class Summaries(Action):
  """TensorBoard scalars: round/<metric> per round, epoch/<metric> per epoch.

  Written to the default summary writer (the trainer's, a no-op writer on
  workers other than the chief).
  """

  def round_end(self, loop, metrics):
    step = int(loop.counters.rounds_done)
    for name, value in metrics.items():
      tf.summary.scalar(f"round/{name}", value, step=step)

  def epoch_end(self, loop, epoch, entry):
    for name, value in entry.items():
      if name != "epoch" and np.ndim(value) == 0:
        tf.summary.scalar(f"epoch/{name}", value, step=epoch + 1)


class History(Action):
  """history.json: per-epoch evaluations, round times, round diagnostics.

  `round_time_s` keeps only rounds that did not trace (Table 5's time per
  round); `train_time_s` adds up over the run's processes. On resume only
  what the restored checkpoint has seen is kept. Written (atomically) just
  before each checkpoint (`write`), so it is never behind the checkpoint.
  """

  def __init__(self, model_dir):
    self.path = os.path.join(model_dir, "history.json")
    self.data = self.empty()

  @staticmethod
  def empty():
    return {"epochs": [], "round_time_s": [], "rounds": []}

  def load(self, counters):
    """Reads history.json, cut to what `counters` (restored) have seen."""
    self.data = self.empty()
    if tf.io.gfile.exists(self.path):
      with tf.io.gfile.GFile(self.path) as f:
        self.data = json.load(f)
      self.data["epochs"] = self.data["epochs"][:int(counters.epoch)]
      self.data["rounds"] = [r for r in self.data.get("rounds", [])
                             if r["round"] <= int(counters.rounds_done)]
      self.data["round_time_s"] = [r["round_time_s"] for r in
                                   self.data["rounds"] if not r["traced"]]
    return self.data

  def round_end(self, loop, metrics):
    if not metrics["traced"]:
      self.data["round_time_s"].append(metrics["round_time_s"])
    diagnostics = {k: metrics[k] for k in ROUND_DIAGNOSTICS if k in metrics}
    self.data["rounds"].append(dict(
        round=int(loop.counters.rounds_done), traced=metrics["traced"],
        round_time_s=metrics["round_time_s"], **diagnostics))

  def epoch_end(self, loop, epoch, entry):
    self.data["epochs"].append(entry)

  def write(self, train_time_s):
    """Writes history.json atomically (a kill leaves the old or the new)."""
    self.data["train_time_s"] = train_time_s
    temporary = self.path + ".tmp"
    with tf.io.gfile.GFile(temporary, "w") as f:
      strict_json.dump(self.data, f)
    tf.io.gfile.rename(temporary, self.path, overwrite=True)


class DLNSurface(Action):
  """Figure 3: the DLN's weights and a contour image per teacher epoch.

  `loss_surface.save_snapshot` into model_dir and a TensorBoard image, at
  the start of a run (epoch 0) and after every teacher epoch.
  """

  def __init__(self, dln, model_dir):
    self.dln, self.model_dir = dln, model_dir

  def _snapshot(self, epoch):
    loss_surface.save_snapshot(self.dln, self.model_dir, epoch)
    png = loss_surface.contour_png(self.dln, f"DLN, teacher epoch {epoch}")
    tf.summary.image("dln_surface", tf.image.decode_png(png)[None],
                     step=epoch)

  def start(self, loop):
    if int(loop.counters.rounds_done) == 0:
      self._snapshot(0)

  def epoch_end(self, loop, epoch, entry):
    self._snapshot(epoch + 1)


class Checkpoint(Action):
  """Saves every `every_rounds` rounds (`loop.save()`, with the history).

  The end of an epoch, `max_rounds` and an interruption are saved by the
  trainer itself (they are not a matter of choice).
  """

  def __init__(self, every_rounds=1):
    self.every_rounds = int(every_rounds)

  def round_end(self, loop, metrics):
    if int(loop.counters.rounds_done) % self.every_rounds == 0:
      loop.save()


def default_actions(experiment, model_dir, is_chief, history, progress=True,
                    checkpoint_every_rounds=1):
  """The trainer's actions, in the order they run."""
  actions = [ProgressBar(enabled=progress and is_chief), Summaries(), history]
  if is_chief and experiment.teaches and isinstance(experiment.dln,
                                                    dln_lib.PairwiseDLN):
    actions.append(DLNSurface(experiment.dln, model_dir))
  return actions + [Checkpoint(checkpoint_every_rounds)]
