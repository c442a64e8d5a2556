"""`build`: settings read once, every part built and handed to the loop."""
import inspect

import gin
import tensorflow as tf

from l2t_tf import actions
from l2t_tf import build
from l2t_tf import errors
from l2t_tf import trainer as trainer_lib
import trainer_testlib as lib


class BuildTest(tf.test.TestCase):

  def test_the_loop_takes_built_parts_and_few_settings(self):
    """Issue 24: keyword-only parts, at most 6 settings of the loop's own."""
    parameters = inspect.signature(trainer_lib.Trainer).parameters
    self.assertTrue(all(p.kind == p.KEYWORD_ONLY
                        for p in parameters.values()))
    parts = {"round", "data", "evaluator", "checkpoints", "history",
             "counters", "actions", "strategy"}
    self.assertLessEqual(set(parts), set(parameters))
    self.assertLessEqual(len(set(parameters) - parts), 6)

  def test_settings_are_bound_as_trainer(self):
    gin.clear_config()
    gin.parse_config(["Trainer.unroll_length = 3",
                      "Trainer.rounds_per_validation_batch = 2"])
    try:
      run = build.build(lib.tiny_task(), self.get_temp_dir(),
                        tf.distribute.get_strategy(), progress=False)
    finally:
      gin.clear_config()
    self.assertEqual(run.data.unroll_length, 3)
    self.assertEqual(run.data.rounds_per_validation_batch, 2)
    self.assertEqual(run.settings.unroll_length, 3)
    self.assertEqual(build.SETTING_NAMES[:2],
                     ("unroll_length", "teacher_epochs"))

  def test_an_unknown_setting_is_one_line(self):
    with self.assertRaisesRegex(errors.UserError, "unknown setting 'unroll'"):
      lib.tiny_trainer(self.get_temp_dir(), unroll=3)

  def test_default_actions(self):
    trainer = lib.tiny_trainer(self.get_temp_dir())
    kinds = [type(a) for a in trainer.actions]
    self.assertEqual(kinds, [actions.ProgressBar, actions.Summaries,
                             actions.DLNSurface])
    fixed = lib.tiny_trainer(self.get_temp_dir(), method="fixed_loss")
    self.assertNotIn(actions.DLNSurface, [type(a) for a in fixed.actions])
    recorder = print  # Any callable of an output.
    mine = lib.tiny_trainer(self.get_temp_dir(), actions=[recorder])
    self.assertEqual(list(mine.actions), [recorder])


if __name__ == "__main__":
  tf.test.main()
