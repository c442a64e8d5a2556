"""The command line: `python -m l2t_tf.main`, Ctrl-C and resume, bad bindings."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import tensorflow as tf

import l2t_tf

TINY = ["Trainer.unroll_length = 2", "Trainer.teacher_epochs = 2",
        "Trainer.rounds_per_epoch = 3", "Trainer.batch_size = 10",
        "Trainer.validation_batch_size = 50",
        "Trainer.checkpoint_every_rounds = 100",
        "digits_cnn.widths = (4, 8, 8)"]


def _command(model_dir, bindings):
  args = [sys.executable, "-m", "l2t_tf.main",
          f"--gin_bindings=train_eval.model_dir = '{model_dir}'"]
  return args + [f"--gin_bindings={b}" for b in bindings]


class MainTest(tf.test.TestCase):

  def test_ctrl_c_then_resume_then_results(self):
    model_dir = os.path.join(self.get_temp_dir(), "run")
    proc = subprocess.Popen(_command(model_dir, TINY), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stderr = []
    reader = threading.Thread(
        target=lambda: stderr.extend(iter(lambda: proc.stderr.read(64), "")))
    reader.start()
    deadline = time.time() + 300
    # Wait for the progress bar to show a finished round, then press Ctrl-C.
    while not re.search(r"\| [1-9]/3 \[", "".join(stderr)):
      self.assertIsNone(proc.poll(), "".join(stderr)[-3000:])
      self.assertLess(time.time(), deadline)
      time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join()
    self.assertEqual(proc.returncode, 130, "".join(stderr)[-3000:])
    self.assertIn("Run the same command again to resume", "".join(stderr))
    self.assertNotEmpty(tf.io.gfile.glob(
        os.path.join(model_dir, "checkpoints", "ckpt-*.index")))

    out = subprocess.run(_command(model_dir, TINY), capture_output=True,
                         text=True, timeout=600)
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    results = json.loads(out.stdout.strip().splitlines()[-1])
    self.assertGreaterEqual(results["resumed_from_round"], 1)
    self.assertEqual(results["rounds_done"], 6)
    self.assertEqual(results["teacher_epochs_done"], 2)
    for key in ("test_accuracy", "baseline_test_accuracy", "model_dir",
                "dln_export_path", "median_round_time_s"):
      self.assertIn(key, results)
    self.assertBetween(results["test_accuracy"], 0.0, 1.0)
    with open(os.path.join(model_dir, "results.json")) as f:
      self.assertEqual(json.load(f)["rounds_done"], 6)
    self.assertTrue(os.path.exists(
        os.path.join(model_dir, "operative_config.gin")))
    self.assertNotEmpty(tf.io.gfile.glob(
        os.path.join(model_dir, "tensorboard", "events.out.tfevents.*")))
    loss = l2t_tf.load_dln(results["dln_export_path"])
    value = loss(np.array([1, 2]), np.random.normal(size=(2, 10)))
    self.assertTrue(np.isfinite(float(value)))

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
