"""Issue 15: a run cannot be silently corrupted.

Config drift on resume, unreadable checkpoints, a write failure, a diverged
student, two runs on one model_dir, and kills at chosen points of a save
(several in a row; all four points with L2T_SLOW_TESTS=1) after which the
resumed run ends where an uninterrupted one does.
"""
import concurrent.futures
import glob
import json
import os
import subprocess
import sys
import time

import gin
import numpy as np
import tensorflow as tf

from l2t_tf import config
from l2t_tf import errors
from l2t_tf import run_config
from l2t_tf import run_lock
from l2t_tf import train_eval
from l2t_tf import trainer as trainer_lib
import trainer_testlib as lib

HERE = os.path.dirname(os.path.abspath(__file__))
SLOW = bool(os.environ.get("L2T_SLOW_TESTS"))
TINY = ["Trainer.unroll_length = 2", "Trainer.teacher_epochs = 2",
        "Trainer.rounds_per_epoch = 3", "Trainer.batch_size = 10",
        "Trainer.validation_batch_size = 50", "Trainer.progress = False",
        "digits_cnn.widths = (4, 8, 8)"]


def _parse(model_dir, *bindings):
  config.parse([config.DEFAULT_GIN_FILE],
               TINY + [f"train_eval.model_dir = '{model_dir}'", *bindings])


def _newest_data_file(model_dir):
  path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  return glob.glob(path + ".data-*")[0]


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


class ConfigDriftTest(tf.test.TestCase):

  def tearDown(self):
    gin.clear_config()
    super().tearDown()

  def test_resuming_with_other_settings_is_an_error(self):
    model_dir = os.path.join(self.get_temp_dir(), "drift")
    _parse(model_dir, "Trainer.max_rounds = 2")
    train_eval.train_eval()
    _parse(model_dir, "Trainer.max_rounds = 3", "Trainer.unroll_length = 3",
           "Trainer.seed = 4")
    with self.assertRaisesRegex(errors.UserError, (
        r"Trainer.seed: 0 -> 4; Trainer.unroll_length: 2 -> 3\. .*"
        r"--override_config")):
      train_eval.train_eval()
    # Bookkeeping may differ; the run continues where it stopped.
    _parse(model_dir, "Trainer.max_rounds = 3",
           "Trainer.checkpoint_every_rounds = 2", "Trainer.eval_batch_size = 7")
    self.assertEqual(train_eval.train_eval()["rounds_done"], 3)
    # Deliberately: resumes, records what changed, keeps the new settings.
    _parse(model_dir, "Trainer.max_rounds = 4", "Trainer.seed = 4")
    results = train_eval.train_eval(override_config=True)
    self.assertEqual(results["rounds_done"], 4)
    self.assertEqual(results["config_overrides"], ["Trainer.seed: 0 -> 4"])
    saved = run_config.load(os.path.join(model_dir, "checkpoints"))
    self.assertEqual(saved["Trainer.seed"], "4")

  def test_values_are_compared_without_memory_addresses(self):
    self.assertEqual(run_config._format(lib.dense_student),  # pylint: disable=protected-access
                     "@trainer_testlib.dense_student")
    self.assertEqual(run_config.differences(
        {"A.b": "1", "get_strategy.name": "'default'", "A.progress": "True"},
        {"A.b": "1", "get_strategy.name": "'mirrored'", "A.progress": "False",
         "A.c": "2"}), [("A.c", "(unset)", "2")])


class CheckpointFaultTest(tf.test.TestCase):

  def test_unreadable_newest_checkpoint_falls_back_to_the_one_before(self):
    base = self.get_temp_dir()
    model_dir = os.path.join(base, "torn")
    lib.tiny_trainer(model_dir, max_rounds=3).run()
    _truncate(_newest_data_file(model_dir))
    resumed = lib.tiny_trainer(model_dir)
    with self.assertLogs("absl", "WARNING") as logs:
      self.assertTrue(resumed.restore())
    self.assertIn("ckpt-3 is unreadable", "\n".join(logs.output))
    self.assertEqual(int(resumed.rounds_done), 2)
    results = lib.tiny_trainer(model_dir).run()
    straight = lib.tiny_trainer(os.path.join(base, "straight")).run()
    self.assertEqual(results["rounds_done"], straight["rounds_done"])
    self.assertAllClose(results["test_accuracy"], straight["test_accuracy"])
    self.assertAllClose(results["test_loss"], straight["test_loss"])

  def test_a_relative_model_dir_resumes(self):
    # The default job's model_dir is relative ('runs/digits_l2t_dln'):
    # restore once looked for <dir>/<dir>/ckpt-k and found nothing readable.
    cwd = os.getcwd()
    os.chdir(self.get_temp_dir())
    try:
      lib.tiny_trainer("relative_run", max_rounds=2).run()
      resumed = lib.tiny_trainer("relative_run", max_rounds=4).run()
    finally:
      os.chdir(cwd)
    self.assertEqual(resumed["resumed_from_round"], 2)
    self.assertEqual(resumed["rounds_done"], 4)

  def test_no_readable_checkpoint_is_one_error(self):
    model_dir = os.path.join(self.get_temp_dir(), "all_torn")
    lib.tiny_trainer(model_dir, max_rounds=2, checkpoint_every_rounds=1).run()
    for path in glob.glob(os.path.join(model_dir, "checkpoints", "*.data-*")):
      _truncate(path)
    with self.assertRaisesRegex(errors.UserError,
                                "no checkpoint in .* can be read"):
      lib.tiny_trainer(model_dir).restore()

  def test_a_full_disk_stops_the_run_and_keeps_what_was_saved(self):
    model_dir = os.path.join(self.get_temp_dir(), "full")
    trainer = lib.tiny_trainer(model_dir)
    save, calls = trainer.checkpoints.manager.save, []

    def full_on_the_third(**kwargs):
      calls.append(1)
      if len(calls) == 3:
        raise tf.errors.ResourceExhaustedError(
            None, None, "No space left on device")
      return save(**kwargs)
    trainer.checkpoints.manager.save = full_on_the_third
    with self.assertRaisesRegex(errors.UserError, (
        r"cannot write to .*checkpoints \(ResourceExhaustedError: No space "
        r"left on device\); the last checkpoint saved, .*ckpt-2, is intact")):
      trainer.run()
    resumed = lib.tiny_trainer(model_dir)
    self.assertTrue(resumed.restore())
    self.assertEqual(int(resumed.rounds_done), 2)


class DivergenceTest(tf.test.TestCase):

  def test_a_diverged_student_stops_the_run_unsaved(self):
    model_dir = os.path.join(self.get_temp_dir(), "diverged")
    lib.tiny_trainer(model_dir, max_rounds=2).run()
    saved = [v.numpy() for v in lib.tiny_trainer(model_dir).student.variables]
    diverging = lib.tiny_trainer(model_dir, student_learning_rate=1e6)
    with self.assertRaisesRegex(trainer_lib.Diverged, (
        r"the (comparison )?student diverged in round 3 .* lower "
        r"Trainer.student_learning_rate \(now 1e\+06\)")):
      diverging.run()
    kept = lib.tiny_trainer(model_dir)
    kept.restore()
    self.assertEqual(int(kept.rounds_done), 2)
    for variable in kept.student.variables:
      self.assertTrue(np.all(np.isfinite(variable.numpy())))
    self.assertNotAllClose(kept.student.variables[0], saved[0])

  def test_an_exploding_loss_is_divergence_too(self):
    trainer = lib.tiny_trainer(self.get_temp_dir(), max_abs_loss=1e-3)
    with self.assertRaisesRegex(trainer_lib.Diverged, "training loss is"):
      trainer.run()


def _main(model_dir, *bindings, env=None, script=None):
  args = [sys.executable, script or "-m", *([] if script else ["l2t_tf.main"]),
          f"--gin_bindings=train_eval.model_dir = '{model_dir}'"]
  args += [f"--gin_bindings={b}" for b in TINY + list(bindings)]
  return subprocess.run(args, capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, **(env or {})))


class LockTest(tf.test.TestCase):

  def test_a_second_run_on_the_same_directory_exits_at_once(self):
    model_dir = self.get_temp_dir()
    with run_lock.hold(model_dir):
      start = time.perf_counter()
      out = _main(model_dir)
      elapsed = time.perf_counter() - start
    self.assertEqual(out.returncode, 2, out.stderr[-2000:])
    self.assertRegex(out.stderr, (
        rf"error: train_eval.model_dir '{model_dir}' is in use by another "
        rf"run \(process {os.getpid()} on "))
    self.assertNotIn("Traceback", out.stderr)
    self.assertLess(elapsed, 60)  # No model was built (import time only).
    with run_lock.hold(model_dir):  # Released with the block.
      pass

  def test_a_killed_holder_leaves_no_stale_lock(self):
    model_dir = self.get_temp_dir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from l2t_tf import run_lock\n"
        f"with run_lock.hold({model_dir!r}):\n"
        "  print('held', flush=True); time.sleep(600)")],
                              stdout=subprocess.PIPE, text=True)
    self.assertEqual(holder.stdout.readline().strip(), "held")
    with self.assertRaises(run_lock.Locked):
      with run_lock.hold(model_dir):
        pass
    holder.kill()
    holder.wait(timeout=60)
    with run_lock.hold(model_dir):
      pass


class KillDuringSaveTest(tf.test.TestCase):
  """Kills at chosen points of saves, in a row, then one run to the end."""

  def test_resumed_run_ends_where_an_uninterrupted_one_does(self):
    base = self.get_temp_dir()
    model_dir = os.path.join(base, "killed")
    script = os.path.join(HERE, "fault_main.py")
    # Save k of each process is the one killed: in the first process the
    # 2nd save, then the resumed processes' 2nd or 3rd. By default a torn
    # checkpoint and a torn history; all four points with L2T_SLOW_TESTS=1.
    faults = (("2:torn_checkpoint", "3:before_checkpoint", "2:torn_history",
               "2:before_history") if SLOW else
              ("2:torn_checkpoint", "2:torn_history"))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      straight = pool.submit(_main, os.path.join(base, "straight"))
      for fault in faults:
        out = _main(model_dir, env={"L2T_FAULT": fault}, script=script)
        self.assertEqual(out.returncode, -9, f"{fault}: {out.stderr[-3000:]}")
      out = _main(model_dir)
      self.assertEqual(out.returncode, 0, out.stderr[-3000:])
      results = json.loads(out.stdout.strip().splitlines()[-1])
      expected = json.loads(straight.result().stdout.strip().splitlines()[-1])
    self.assertEqual(results["rounds_done"], 6)
    self.assertGreater(results["resumed_from_round"], 0)
    for key in ("test_accuracy", "test_loss", "comparison_test_accuracy",
                "comparison_test_loss", "dln_relative_change"):
      self.assertAllClose(results[key], expected[key], msg=key)
    with open(os.path.join(model_dir, "history.json")) as f:
      history = json.load(f)
    self.assertEqual([e["epoch"] for e in history["epochs"]], [1, 2])
    self.assertEqual([r["round"] for r in history["rounds"]],
                     list(range(1, 7)))


if __name__ == "__main__":
  tf.test.main()
