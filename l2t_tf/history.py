"""history.json: per-epoch evaluations, round times, round diagnostics.

Owned by the loop (`trainer.Trainer`), written (atomically) just before
each checkpoint, so it is never behind the checkpoint. `round_time_s` keeps
only rounds that did not trace (Table 5's time per round); `train_time_s`
adds up over the run's processes. On resume only what the restored
checkpoint has seen is kept.
"""
import json
import os

import tensorflow as tf

from l2t_tf import strict_json

#: Per-round diagnostics kept in history.json (issue 12; rounds).
ROUND_DIAGNOSTICS = ("e1", "e2", "e2_minus_e1", "update_helped",
                     "update_accepted", "teacher_cosine", "dln_step_norm",
                     "dln_relative_change", "hypergradient_norm")


class History:
  """The run's history (`data`), loaded, added to and written."""

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

  def add_round(self, rounds_done, metrics):
    """One round's time and diagnostics (`metrics`: its flat dict)."""
    if not metrics["traced"]:
      self.data["round_time_s"].append(metrics["round_time_s"])
    diagnostics = {k: metrics[k] for k in ROUND_DIAGNOSTICS if k in metrics}
    self.data["rounds"].append(dict(
        round=rounds_done, traced=metrics["traced"],
        round_time_s=metrics["round_time_s"], **diagnostics))

  def add_epoch(self, entry):
    self.data["epochs"].append(entry)

  def write(self, train_time_s):
    """Writes history.json atomically (a kill leaves the old or the new)."""
    self.data["train_time_s"] = train_time_s
    temporary = self.path + ".tmp"
    with tf.io.gfile.GFile(temporary, "w") as f:
      strict_json.dump(self.data, f)
    tf.io.gfile.rename(temporary, self.path, overwrite=True)
