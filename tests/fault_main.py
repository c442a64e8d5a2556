"""`python -m l2t_tf.main`, killing itself (SIGKILL) at a chosen save.

L2T_FAULT=<k>:<phase> kills the process at its k-th save (1-based) at one
of these points of `Trainer.save` (which writes history.json, then the
checkpoint):
  before_history      nothing of this save written;
  torn_history        history.json's temporary file half written;
  before_checkpoint   history.json written, the checkpoint not;
  torn_checkpoint     both written, the checkpoint's data file then cut in
                      half (what a kill or a full disk during its write
                      leaves).
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from absl import app  # pylint: disable=g-import-not-at-top
import tensorflow as tf

from l2t_tf import main as main_lib
from l2t_tf import trainer as trainer_lib

PHASES = ("before_history", "torn_history", "before_checkpoint",
          "torn_checkpoint")


def _die():
  os.kill(os.getpid(), signal.SIGKILL)


def _install(k, phase):
  saves = []
  real_save = trainer_lib.Trainer.save

  def save(self):
    saves.append(1)
    if len(saves) != k:
      return real_save(self)
    if phase == "before_history":
      _die()
    if phase == "torn_history":
      torn_write(self.history)
    self.history.write(self._train_time())
    if phase == "before_checkpoint":
      _die()
    path = self.checkpoints.manager.save(
        checkpoint_number=int(self.counters.rounds_done))
    data = tf.io.gfile.glob(path + ".data-*")[0]
    with open(data, "r+b") as f:
      f.truncate(os.path.getsize(data) // 2)
    _die()

  def torn_write(history):
    with open(history.path + ".tmp", "w") as f:
      f.write('{"epochs": [')
    _die()

  trainer_lib.Trainer.save = save


if __name__ == "__main__":
  fault = os.environ.get("L2T_FAULT")
  if fault:
    count, phase = fault.split(":")
    assert phase in PHASES, phase
    _install(int(count), phase)
  app.run(main_lib.main)
