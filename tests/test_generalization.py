"""tools/generalization.py: the cross-data-set benchmark, one tiny cell."""
import json
import os
import subprocess
import sys

import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["Trainer.unroll_length = 2", "Trainer.rounds_per_epoch = 2",
        "Trainer.batch_size = 10", "Trainer.validation_batch_size = 20",
        "Trainer.rounds_per_validation_batch = 1"]


class GeneralizationTest(tf.test.TestCase):

  def test_a_cell_runs_and_is_tabulated_then_reused(self):
    runs = os.path.join(self.get_temp_dir(), "runs")
    output = os.path.join(self.get_temp_dir(), "table")
    command = [sys.executable, os.path.join(REPO, "tools", "generalization.py"),
               "--budget=short", "--seeds=1", "--sets=breast_cancer/mlp",
               "--rows=all", f"--runs_dir={runs}", f"--output={output}"]
    command += [f"--gin_bindings={b}" for b in TINY]
    done = subprocess.run(command, capture_output=True, text=True,
                          timeout=600)
    self.assertEqual(done.returncode, 0, done.stdout + done.stderr[-3000:])
    self.assertIn("breast_cancer/mlp:all:0: ok", done.stdout)
    with open(output + ".json") as f:
      cell = json.load(f)["cells"]["breast_cancer/mlp|all"]
    seed = cell["seeds"]["0"]
    self.assertEqual(seed["rounds_done"], 6)  # 3 teacher epochs of 2.
    self.assertAlmostEqual(cell["gap"]["mean"], 100 * (
        seed["test_accuracy"] - seed["comparison_test_accuracy"]))
    self.assertIsNotNone(seed["heldout_accuracy"])
    with open(output + ".md") as f:
      self.assertIn("| breast_cancer/mlp |", f.read())
    again = subprocess.run(command, capture_output=True, text=True,
                           timeout=600)
    self.assertNotIn(": ok in", again.stdout)  # Finished: read, not rerun.


if __name__ == "__main__":
  tf.test.main()
