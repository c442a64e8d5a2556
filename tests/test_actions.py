"""The loop's actions: callables of each round's and epoch's output."""
import io
import sys
from unittest import mock

import tensorflow as tf

from l2t_tf import actions
import trainer_testlib as lib

N = lib.TINY["unroll_length"]


class _Recorder:
  """An action: records what the loop called it with."""

  def __init__(self):
    self.calls = []

  def __call__(self, output):
    if isinstance(output, actions.RoundOutput):
      self.calls.append(("round", output.rounds_done, output.round_in_epoch,
                         output.metrics["student_steps"]))
    else:
      self.calls.append(("epoch", output.epochs_done,
                         output.entry.get("rounds_done")))


class ActionsTest(tf.test.TestCase):

  def test_actions_are_called_with_each_output_in_loop_order(self):
    recorder = _Recorder()
    trainer = lib.tiny_trainer(self.get_temp_dir(), teacher_epochs=1,
                               rounds_per_epoch=2, extra_actions=[recorder])
    trainer.run()
    self.assertEqual(recorder.calls, [
        ("epoch", 0, None), ("round", 1, 1, 2 * N), ("round", 2, 2, 2 * N),
        ("epoch", 1, 2)])

  def test_progress_bar_shows_e_val_not_the_dln_loss(self):
    teaching = {"train_loss": -3.25, "e1": 0.75, "round_time_s": 0.5}
    rounds_ = [dict(teaching, e2=0.5), teaching,  # Stage III or stage I only.
               {"train_loss": 2.25, "round_time_s": 0.5}]  # A fixed loss.
    bars = []
    for metrics in rounds_:
      with mock.patch.object(sys, "stderr", io.StringIO()) as stderr:
        with actions.ProgressBar() as bar:
          bar(actions.RoundOutput(epoch=0, round_in_epoch=1,
                                  rounds_in_epoch=1, teacher_epochs=1,
                                  rounds_done=1, metrics=metrics))
      bars.append(stderr.getvalue())
    self.assertIn("e_val=0.500, s=0.50", bars[0])
    self.assertIn("e_val=0.750, s=0.50", bars[1])
    self.assertIn("loss=2.250, s=0.50", bars[2])
    self.assertIn("teacher epoch 1/1", bars[0])
    for bar in bars[:2]:
      self.assertNotIn("loss", bar)


if __name__ == "__main__":
  tf.test.main()
