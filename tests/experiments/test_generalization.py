"""tools/generalization.py: the cross-data-set benchmark, one tiny cell."""
import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from l2t_tf.data import benchmark_sets
from l2t_tf.experiments import generalization

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

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
    # Not from the repository: the tool and its cells run from anywhere.
    done = subprocess.run(command, capture_output=True, text=True,
                          timeout=600, cwd=self.get_temp_dir())
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
    # Today's benchmark keeps its run directories (no condition in them).
    self.assertTrue(os.path.exists(os.path.join(
        runs, "short", "breast_cancer_mlp", "all", "seed_0",
        "results.json")))

  def test_a_noisy_cell_with_a_trusted_set_and_a_fixed_loss_row(self):
    runs = os.path.join(self.get_temp_dir(), "runs")
    output = os.path.join(self.get_temp_dir(), "noisy")
    command = [sys.executable, os.path.join(REPO, "tools", "generalization.py"),
               "--budget=short", "--seeds=1", "--sets=breast_cancer/mlp",
               "--rows=arlf", "--condition=noise20", "--trusted=40",
               f"--runs_dir={runs}", f"--output={output}"]
    command += [f"--gin_bindings={b}" for b in TINY]
    done = subprocess.run(command, capture_output=True, text=True,
                          timeout=600)
    self.assertEqual(done.returncode, 0, done.stdout + done.stderr[-3000:])
    self.assertIn("breast_cancer/mlp:arlf:0: ok", done.stdout)
    cell_dir = os.path.join(runs, "short", "noise20_trusted40",
                            "breast_cancer_mlp", "arlf", "seed_0")
    with open(os.path.join(cell_dir, "condition.json")) as f:
      condition = json.load(f)
    # 454 training examples: 40 trusted set aside, 20 % of the rest flipped.
    self.assertEqual(condition["validation_size"], 40)
    self.assertEqual(condition["train_size"], 414)
    self.assertEqual(condition["flipped"], round(0.2 * 414))
    self.assertEqual(condition["train_class_counts"],
                     (np.bincount(benchmark_sets.load("breast_cancer")[1]) -
                      20).tolist())
    self.assertNotIn("rounds_per_epoch", condition)  # TINY binds it.
    with open(os.path.join(cell_dir, "results.json")) as f:
      arlf = json.load(f)
    self.assertEqual(arlf["method"], "fixed_loss")
    self.assertIsNone(arlf["dln_export_path"])
    self.assertEqual(arlf["rounds_done"], 6)
    self.assertIsNotNone(arlf["heldout_accuracy"])
    with open(output + ".json") as f:
      table = json.load(f)
    self.assertEqual((table["condition"], table["trusted"]), ("noise20", 40))
    cell = table["cells"]["breast_cancer/mlp|arlf"]
    self.assertEqual(cell["twin_row"], "all")
    self.assertIsNone(cell["gap"])  # The 'all' cell has not run.
    self.assertAlmostEqual(cell["taught"]["mean"],
                           100 * arlf["test_accuracy"])
    with open(output + ".md") as f:
      text = f.read()
    self.assertIn("condition 'noise20', trusted 40", text)
    self.assertIn("| breast_cancer/mlp | Adaptive robust loss", text)


class TableTest(tf.test.TestCase):
  """The table of hand-made finished cells: pairs and gap / SE."""

  def _args(self, *flags):
    return generalization.parse_args(
        ["--seeds=3", "--sets=digits/cnn", "--rows=all,smooth01",
         f"--runs_dir={self.get_temp_dir()}/runs",
         f"--output={self.get_temp_dir()}/table"] + list(flags))

  def _finish(self, args, row, seed, **results):
    model_dir = generalization._model_dir(args, "digits/cnn", row, seed)  # pylint: disable=protected-access
    os.makedirs(model_dir)
    with open(os.path.join(model_dir, "results.json"), "w") as f:
      json.dump(dict(results, teacher_epochs_done=3), f)

  def test_a_fixed_loss_row_against_the_all_rows_twin(self):
    args = self._args("--condition=noise40", "--trusted=100")
    twins, smooth = [0.80, 0.70, 0.75], [0.83, 0.74, 0.76]
    for seed in range(3):
      self._finish(args, "all", seed, test_accuracy=0.5,
                   comparison_test_accuracy=twins[seed],
                   heldout_accuracy=0.5, comparison_heldout_accuracy=0.6)
      self._finish(args, "smooth01", seed, test_accuracy=smooth[seed],
                   heldout_accuracy=0.65)
    self._finish(args, "smooth01", 3, test_accuracy=0.9)  # Beyond --seeds.
    cells = generalization.table(args)
    cell = cells["digits/cnn|smooth01"]
    gaps = [3.0, 4.0, 1.0]
    self.assertAllClose([cell["gap"]["mean"], cell["gap"]["min"]],
                        [np.mean(gaps), 1.0])
    se = np.std(gaps, ddof=1) / np.sqrt(3)
    self.assertAllClose(cell["gap_over_se"], np.mean(gaps) / se)
    self.assertAllClose(cell["twin"]["mean"], 100 * np.mean(twins))
    self.assertAllClose(cell["heldout_gap"]["mean"], 5.0)
    self.assertEqual(cell["gap"]["n"], 3)
    taught = cells["digits/cnn|all"]
    self.assertAllClose(taught["gap"]["mean"], -100 * (np.mean(twins) - 0.5))
    self.assertIn("noise40_trusted100", generalization._model_dir(  # pylint: disable=protected-access
        args, "digits/cnn", "all", 0))
    generalization.write_table(args, cells, 0.0)
    with open(args.output + ".md") as f:
      text = f.read()
    self.assertIn("| gap / SE |", text)
    self.assertIn(f"| {np.mean(gaps) / se:+.2f} |", text)
    self.assertIn("condition 'noise40', trusted 100", text)

  def test_without_the_twin_a_fixed_loss_row_has_no_gap(self):
    args = self._args()
    self._finish(args, "smooth01", 0, test_accuracy=0.8)
    cell = generalization.table(args)["digits/cnn|smooth01"]
    self.assertIsNone(cell["gap"])
    self.assertIsNone(cell["gap_over_se"])
    self.assertFalse(cell["meets_bar"])
    generalization.write_table(args, {"digits/cnn|smooth01": cell}, 0.0)

  def test_run_directories_and_defaults(self):
    clean = generalization.parse_args(["--runs_dir=r"])
    self.assertEqual(generalization._model_dir(clean, "digits/cnn", "all", 0),  # pylint: disable=protected-access
                     os.path.join("r", "short", "digits_cnn", "all",
                                  "seed_0"))
    self.assertEqual(clean.rows, ",".join(generalization.ROWS))
    self.assertEqual(clean.output, "docs/generalization_short")
    noisy = generalization.parse_args(["--runs_dir=r", "--condition=noise20"])
    self.assertEqual(generalization._model_dir(noisy, "digits/cnn", "all", 0),  # pylint: disable=protected-access
                     os.path.join("r", "short", "noise20", "digits_cnn",
                                  "all", "seed_0"))
    self.assertEqual(noisy.rows, "all,smooth01,arlf")
    self.assertEqual(noisy.output, "docs/generalization_short_noise20")
    self.assertEqual(generalization.row_bindings("smooth01"), [
        "build.round = @FixedLossRound",
        "SupervisedTask.fixed_loss = @smooth_01_loss"])

  def test_cell_data_keeps_the_test_split_and_matches_the_budget(self):
    _, _, x_test, y_test = benchmark_sets.load("segment")
    train, validation, test, classes, data = generalization.cell_data(
        "segment", "imbalance10", trusted=70, seed=2)
    self.assertEqual(classes, 7)
    self.assertAllEqual(test[0], x_test)
    self.assertAllEqual(test[1], y_test)
    self.assertAllEqual(np.bincount(validation[1]), np.full(7, 10))
    counts = np.bincount(train[1], minlength=7)
    self.assertEqual(counts[6], round(counts[0] / 10))
    self.assertEqual(len(train[1]), len(data.y))
    # The per-epoch random split of 1000 examples at the recipe's ratio 0.5,
    # after the 20 % held out: 400 // 100 validation batches x 5 rounds.
    self.assertEqual(generalization.matched_rounds_per_epoch([], 1000), 20)
    self.assertEqual(generalization.matched_rounds_per_epoch(
        ["Trainer.validation_batch_size = 50"], 1000), 40)
    self.assertIsNone(generalization.matched_rounds_per_epoch(
        ["Trainer.rounds_per_epoch = 3"], 1000))


if __name__ == "__main__":
  tf.test.main()
