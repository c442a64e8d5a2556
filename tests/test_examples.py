"""The scripts of examples/ run, at a tiny budget, from an empty directory.

Each script runs as a user runs it: `python <repo>/examples/<script>.py
--tiny`, in a subprocess whose working directory is a new empty temporary
directory, with its `--model_dir` in that temporary tree. The tests check
the exit code and what the run wrote (results.json, the exported DLN, the
saved `.keras` model) and printed.

The runs take about 30-50 s each, mostly TensorFlow's start-up and tracing,
which use one core: `setUpClass` starts them all, two at a time, and each
test waits for its own.
"""
from concurrent import futures
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")
TIMEOUT_S = 900  # Per script run: far above the ~1 min one takes.
PARALLEL_RUNS = 2


def _run(root, script, *flags):
  """Runs examples/<script> --tiny from the empty directory <root>/cwd.

  Returns (CompletedProcess, cwd).
  """
  cwd = os.path.join(root, "cwd")
  os.makedirs(cwd, exist_ok=True)
  process = subprocess.run(
      [sys.executable, os.path.join(EXAMPLES, script), "--tiny", *flags],
      cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S,
      check=False)
  return process, cwd


def _reuse_twice(root):
  """reuse_dln.py learning its DLN, then again on the .keras file it wrote."""
  first = _run(root, "reuse_dln.py", f"--model_dir={root}/run")
  if first[0].returncode:
    return first, None
  keras_file = os.path.join(root, "run", "teach", "dln_export", "dln.keras")
  second = _run(root, "reuse_dln.py", f"--dln={keras_file}",
                f"--model_dir={root}/run_keras")
  return first, second


class ExamplesTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._temporary = tempfile.TemporaryDirectory(prefix="l2t_examples_")
    root = cls._temporary.name
    cls._pool = futures.ThreadPoolExecutor(max_workers=PARALLEL_RUNS)
    # Longest first, so that the two workers finish together.
    cls._runs = {
        "cnn": cls._pool.submit(_run, f"{root}/cnn", "own_cnn_tf_data.py",
                                "--augment", f"--model_dir={root}/cnn/run"),
        "reuse": cls._pool.submit(_reuse_twice, f"{root}/reuse"),
        "mlp": cls._pool.submit(_run, f"{root}/mlp", "own_mlp_tabular.py",
                                f"--model_dir={root}/mlp/run"),
        "regression": cls._pool.submit(
            _run, f"{root}/regression", "own_task_regression.py",
            f"--model_dir={root}/regression/run"),
    }

  @classmethod
  def tearDownClass(cls):
    for run in cls._runs.values():
      run.cancel()
    cls._pool.shutdown(wait=True)
    cls._temporary.cleanup()
    super().tearDownClass()

  def _succeeded(self, run):
    """Asserts exit code 0 and nothing written into the working directory;
    returns stdout."""
    process, cwd = run
    self.assertEqual(
        process.returncode, 0,
        f"{' '.join(process.args)} failed:\n{process.stdout}\n"
        f"{process.stderr[-3000:]}")
    self.assertEqual(os.listdir(cwd), [])  # Everything went to model_dir.
    return process.stdout

  def _results(self, name):
    path = os.path.join(self._temporary.name, name, "run", "results.json")
    with open(path) as f:
      return json.load(f)

  def _assert_exported_dln(self, results, dln_class):
    export = results["dln_export_path"]
    self.assertTrue(os.path.isfile(os.path.join(export, "dln.keras")))
    with open(os.path.join(export, "dln.json")) as f:
      self.assertEqual(json.load(f)["class"], dln_class)

  def _assert_accuracies(self, results):
    for key in ("test_accuracy", "comparison_test_accuracy"):
      self.assertTrue(math.isfinite(results[key]), key)
      self.assertTrue(0.0 <= results[key] <= 1.0, key)

  def test_own_mlp_on_numpy_tabular_data(self):
    stdout = self._succeeded(self._runs["mlp"].result())
    results = self._results("mlp")
    self._assert_accuracies(results)
    self.assertEqual(results["rounds_done"], 4)
    self.assertEqual(results["task"], "supervised")
    self._assert_exported_dln(results, "PairwiseDLN")
    self.assertIn(f"test accuracy, taught by the DLN: "
                  f"{results['test_accuracy']:.4f}", stdout)
    self.assertIn(f"test accuracy, CE twin:           "
                  f"{results['comparison_test_accuracy']:.4f}", stdout)

  def test_own_subclassed_cnn_on_tf_data_with_augmentation(self):
    stdout = self._succeeded(self._runs["cnn"].result())
    results = self._results("cnn")
    self._assert_accuracies(results)
    self.assertEqual(results["rounds_done"], 4)
    self._assert_exported_dln(results, "PairwiseDLN")
    self.assertIn("a subclassed SmallCNN and its CE twin SmallCNN", stdout)
    self.assertIn("augmentation on", stdout)
    # Keras' BatchNormalization was made exact, in the student itself.
    self.assertIn(
        "BatchNormalization now l2t_tf.students.batch_norm.BatchNormalization"
        "\n", stdout)

  def test_reuse_dln_in_model_fit_and_keras_file(self):
    learned, from_keras_file = self._runs["reuse"].result()
    for run, model_dir in ((learned, "run"), (from_keras_file, "run_keras")):
      self.assertIsNotNone(run, "the first run failed")
      stdout = self._succeeded(run)
      for labels in ("integer", "one-hot"):
        self.assertRegex(stdout, rf"DLN, {labels} labels: +[01]\.\d{{4}}")
      self.assertRegex(stdout, r"cross-entropy: +[01]\.\d{4}")
      # The script checked the reloaded model's loss against the original's.
      self.assertIn("OK: integer and one-hot labels agree; the reloaded loss "
                    "matches.", stdout)
      saved = os.path.join(self._temporary.name, "reuse", model_dir,
                           "fresh_mlp_dln.keras")
      self.assertGreater(os.path.getsize(saved), 0)
    self.assertIn("learned a DLN in 4 rounds", learned[0].stdout)
    self.assertIn("DLN: PairwiseDLN from ", from_keras_file[0].stdout)
    self.assertIn("dln.keras", from_keras_file[0].stdout)
    self.assertNotIn("learned a DLN", from_keras_file[0].stdout)

  def test_own_task_regression(self):
    stdout = self._succeeded(self._runs["regression"].result())
    results = self._results("regression")
    self.assertEqual(results["task"], "regression")
    self.assertEqual(results["primary_metric"], "test_mse")
    for key in ("test_mse", "comparison_test_mse", "test_mae",
                "comparison_test_mae"):
      self.assertTrue(math.isfinite(results[key]), key)
      self.assertGreater(results[key], 0.0, key)
    self.assertNotIn("test_accuracy", results)
    self.assertNotIn("warm_start_rmse", results)  # dln_warm_start=False.
    self.assertIn("fraction_updates_accepted", results)  # update_guard=True.
    self._assert_exported_dln(results, "RegressionDLN")
    self.assertIn(f"test MSE, taught by the DLN: {results['test_mse']:.4f}",
                  stdout)
    self.assertRegex(stdout, r"learned loss: [\d.]+ \* squared error \+ "
                     r"[\d.]+ \* absolute error \+ [\d.]+ \* Huber")
    self.assertIn("exported DLN, read back by l2t_tf.load_dln", stdout)


if __name__ == "__main__":
  unittest.main()
