"""The command line: `python -m l2t_tf.main`, Ctrl-C and resume, bad bindings."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import gin
import numpy as np
import tensorflow as tf

import l2t_tf
from l2t_tf import config
from l2t_tf import build
from l2t_tf.tasks import classification

TINY = ["Trainer.unroll_length = 2", "Trainer.teacher_epochs = 2",
        "Trainer.rounds_per_epoch = 20", "Trainer.batch_size = 10",
        "Trainer.validation_batch_size = 50",
        "Trainer.checkpoint_every_rounds = 1",
        "digits_cnn.widths = (4, 8, 8)"]


def _command(model_dir, bindings):
  args = [sys.executable, "-m", "l2t_tf.main",
          f"--gin_bindings=train_eval.model_dir = '{model_dir}'"]
  return args + [f"--gin_bindings={b}" for b in bindings]


class MainTest(tf.test.TestCase):

  def _start_and_wait(self, model_dir, progress_pattern):
    """Starts main; returns (process, stderr chunks) once stderr matches."""
    proc = subprocess.Popen(_command(model_dir, TINY), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stderr = []
    reader = threading.Thread(
        target=lambda: stderr.extend(iter(lambda: proc.stderr.read(64), "")))
    reader.start()
    deadline = time.time() + 300
    while not re.search(progress_pattern, "".join(stderr)):
      self.assertIsNone(proc.poll(), "".join(stderr)[-3000:])
      self.assertLess(time.time(), deadline)
      time.sleep(0.1)
    return proc, stderr, reader

  def test_ctrl_c_and_kill_then_resume_to_the_uninterrupted_result(self):
    model_dir = os.path.join(self.get_temp_dir(), "run")
    # 1. Ctrl-C after the first round: saved, exit 130, resumable.
    proc, stderr, reader = self._start_and_wait(
        model_dir, r"epoch 1/2:.*\| [1-9]/20 \[")
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join()
    self.assertEqual(proc.returncode, 130, "".join(stderr)[-3000:])
    self.assertIn("Run the same command again to resume", "".join(stderr))
    self.assertNotEmpty(tf.io.gfile.glob(
        os.path.join(model_dir, "checkpoints", "ckpt-*.index")))
    # 2. The same command resumes; SIGKILL it (no chance to save) in epoch 2.
    proc, stderr, reader = self._start_and_wait(
        model_dir, r"epoch 2/2:.*\| [1-9]/20 \[")
    proc.kill()
    proc.wait(timeout=60)
    reader.join()
    # 3. Again: it resumes from the last checkpoint and finishes.
    out = subprocess.run(_command(model_dir, TINY), capture_output=True,
                         text=True, timeout=600)
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    results = json.loads(out.stdout.strip().splitlines()[-1])
    self.assertGreaterEqual(results["resumed_from_round"], 4)
    self.assertEqual(results["rounds_done"], 40)
    self.assertEqual(results["teacher_epochs_done"], 2)
    for key in ("test_accuracy", "comparison_test_accuracy", "model_dir",
                "dln_export_path", "median_round_time_s"):
      self.assertIn(key, results)
    with open(os.path.join(model_dir, "results.json")) as f:
      self.assertEqual(json.load(f)["rounds_done"], 40)
    self.assertTrue(os.path.exists(
        os.path.join(model_dir, "operative_config.gin")))
    self.assertNotEmpty(tf.io.gfile.glob(
        os.path.join(model_dir, "tensorboard", "events.out.tfevents.*")))
    # 4. Same result as an uninterrupted run of the same configuration (the
    # default gin file with the same bindings, built in this process).
    gin.clear_config()
    config.parse([config.DEFAULT_GIN_FILE], TINY)
    straight = build.build(
        classification.ClassificationTask(),
        os.path.join(self.get_temp_dir(), "straight"),
        tf.distribute.get_strategy(), progress=False)
    expected = straight.run()
    gin.clear_config()
    self.assertAllClose(results["test_accuracy"], expected["test_accuracy"])
    self.assertAllClose(results["comparison_test_accuracy"],
                        expected["comparison_test_accuracy"])
    loss = l2t_tf.load_dln(results["dln_export_path"])
    logits = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)
    labels = np.array([1, 2, 3, 4])
    self.assertAllClose(loss(labels, logits), straight.dln(labels, logits),
                        rtol=1e-5)

  def test_stderr_is_a_progress_bar_and_a_few_lines(self):
    # Issue 22: no line per checkpoint (one per round), e_val in the bar.
    out = subprocess.run(
        _command(os.path.join(self.get_temp_dir(), "run"),
                 TINY + ["Trainer.rounds_per_epoch = 5"]),
        capture_output=True, timeout=600)
    stderr = out.stderr.decode()  # Not text=True: it reads "\r" as "\n".
    self.assertEqual(out.returncode, 0, stderr[-3000:])
    self.assertNotIn("Saved checkpoint", stderr)
    self.assertIn("e_val=", stderr)
    self.assertNotIn("loss=", stderr)
    # A bar redraws its line ("\r"): one line per teacher epoch, the DLN's
    # warm start and the two epochs' summaries.
    lines = [line for line in stderr.split("\n") if line.strip()]
    self.assertLen(lines, 5, stderr)
    self.assertLess(len(stderr), 5000)

  def test_help_lists_the_packaged_gin_files_and_the_knobs(self):
    for flag in ("--help", "-h"):
      out = subprocess.run([sys.executable, "-m", "l2t_tf.main", flag],
                           capture_output=True, text=True, timeout=300)
      with self.subTest(flag):
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        for text in ("python -m l2t_tf.main", "--gin_bindings",
                     "pspnet_voc.gin", "digits_l2t_dln.gin",
                     "Trainer.unroll_length", "get_strategy.name"):
          self.assertIn(text, out.stdout)

  def test_bad_binding_is_named_without_traceback(self):
    out = subprocess.run(
        [sys.executable, "-m", "l2t_tf.main",
         "--gin_bindings=Trainer.unroll_lenght = 3"],
        capture_output=True, text=True, timeout=300)
    self.assertEqual(out.returncode, 2)
    self.assertIn("unroll_lenght", out.stderr)
    self.assertNotIn("Traceback", out.stderr)


if __name__ == "__main__":
  tf.test.main()
