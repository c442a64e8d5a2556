"""strict_json: NaN/Inf become null, a flag says where, the output is JSON."""
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from l2t_tf import strict_json


def _refuse(constant):
  raise ValueError(f"not JSON: {constant}")


def strict_loads(text):
  """json.loads that fails on NaN, Infinity and -Infinity."""
  return json.loads(text, parse_constant=_refuse)


class StrictJsonTest(tf.test.TestCase):

  def test_strict_loads_refuses_what_json_writes_by_default(self):
    with self.assertRaisesRegex(ValueError, "NaN"):
      strict_loads(json.dumps({"loss": float("nan")}))

  def test_nested_non_finite_values_become_null_and_are_flagged(self):
    value = {"test_loss": float("nan"), "accuracy": 0.5,
             "history": [{"test_loss": float("inf"), "epoch": 1},
                         {"test_loss": 0.25, "epoch": 2}],
             "times": (1.0, -math.inf), "name": "digits", "fallback": None}
    loaded = strict_loads(strict_json.dumps(value, sort_keys=True))
    self.assertIsNone(loaded["test_loss"])
    self.assertIsNone(loaded["history"][0]["test_loss"])
    self.assertEqual(loaded["history"][1]["test_loss"], 0.25)
    self.assertEqual(loaded["times"], [1.0, None])
    self.assertEqual(loaded["name"], "digits")
    self.assertIsNone(loaded["fallback"])
    self.assertEqual(loaded["non_finite"],
                     ["test_loss", "history.0.test_loss", "times.1"])

  def test_finite_values_are_written_as_json_writes_them(self):
    value = {"a": 1, "b": [0.5, {"c": "x"}], "d": True}
    self.assertEqual(strict_json.dumps(value), json.dumps(value))
    self.assertNotIn("non_finite", strict_loads(strict_json.dumps(value)))

  def test_numpy_scalars_and_arrays(self):
    value = {"f32": np.float32(0.5), "i64": np.int64(3), "b": np.bool_(True),
             "nan32": np.float32("nan"), "array": np.array([1.0, np.inf])}
    loaded = strict_loads(strict_json.dumps(value))
    self.assertEqual(loaded["f32"], 0.5)
    self.assertEqual(loaded["i64"], 3)
    self.assertIs(loaded["b"], True)
    self.assertIsNone(loaded["nan32"])
    self.assertEqual(loaded["array"], [1.0, None])
    self.assertEqual(loaded["non_finite"], ["nan32", "array.1"])

  def test_input_is_not_changed(self):
    value = {"loss": float("nan"), "rows": [float("nan")]}
    strict_json.dumps(value)
    self.assertTrue(math.isnan(value["loss"]))
    self.assertTrue(math.isnan(value["rows"][0]))
    self.assertNotIn("non_finite", value)

  def test_a_flag_read_back_keeps_the_paths_that_are_still_null(self):
    written = strict_loads(strict_json.dumps(
        {"epochs": [{"loss": float("nan")}, {"loss": float("nan")}]}))
    written["epochs"] = written["epochs"][:1]  # A resume cuts epoch 2.
    written["epochs"].append({"loss": 0.5})  # and redoes it, finite now.
    written["rounds"] = [float("inf")]
    again = strict_loads(strict_json.dumps(written))
    self.assertEqual(again["non_finite"], ["epochs.0.loss", "rounds.0"])

  def test_top_level_non_finite_and_lists(self):
    self.assertEqual(strict_json.dumps(float("nan")), "null")
    self.assertEqual(strict_json.dumps([1.0, float("-inf")]), "[1.0, null]")

  def test_dump_writes_to_a_file_with_json_options(self):
    f = io.StringIO()
    strict_json.dump({"b": float("nan"), "a": 1}, f, indent=1, sort_keys=True)
    self.assertIn('\n "a": 1', f.getvalue())
    self.assertEqual(strict_loads(f.getvalue())["non_finite"], ["b"])

  def test_what_is_not_json_is_an_error(self):
    with self.assertRaises(TypeError):
      strict_json.dumps({"a": object()})
    self.assertEqual(strict_json.dumps({"a": object}, default=lambda o: "x"),
                     '{"a": "x"}')


# `python -m l2t_tf.main` whose evaluations report an overflowed test loss
# (+inf) and a NaN one for the comparison student. A diverged student stops
# the run (trainer.Diverged), so these come from evaluation: a loss that
# overflows on the test set while training stayed in bounds.
_NON_FINITE_MAIN = """
from absl import app
from l2t_tf import main
from l2t_tf.tasks import classification
real = classification.ClassificationTask.evaluate
calls = []
def evaluate(self, student, dataset):
  calls.append(1)
  loss = float("inf") if len(calls) % 2 else float("nan")
  return dict(real(self, student, dataset), test_loss=loss)
classification.ClassificationTask.evaluate = evaluate
app.run(main.main)
"""


class NonFiniteRunTest(tf.test.TestCase):

  def test_a_run_with_non_finite_results_prints_and_writes_strict_json(self):
    model_dir = os.path.join(self.get_temp_dir(), "non_finite")
    bindings = [f"train_eval.model_dir = '{model_dir}'",
                "Trainer.teacher_epochs = 1", "Trainer.rounds_per_epoch = 1",
                "Trainer.unroll_length = 2", "Trainer.batch_size = 10",
                "Trainer.validation_batch_size = 50",
                "Trainer.progress = False", "digits_cnn.widths = (4, 8, 8)"]
    out = subprocess.run(
        [sys.executable, "-c", _NON_FINITE_MAIN] +
        [f"--gin_bindings={b}" for b in bindings],
        capture_output=True, text=True, timeout=600)
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    line = strict_loads(out.stdout.strip().splitlines()[-1])
    self.assertCountEqual(line["non_finite"],
                          ["test_loss", "comparison_test_loss"])
    self.assertIsNone(line["test_loss"])
    self.assertIsNone(line["comparison_test_loss"])
    self.assertGreater(line["test_accuracy"], 0.0)  # Finite: kept.
    with open(os.path.join(model_dir, "results.json")) as f:
      results = strict_loads(f.read())
    self.assertIn("history.0.comparison_test_loss", results["non_finite"])
    self.assertIsNone(results["history"][0]["test_loss"])
    with open(os.path.join(model_dir, "history.json")) as f:
      history = strict_loads(f.read())
    self.assertEqual(history["non_finite"],
                     ["epochs.0.test_loss", "epochs.0.comparison_test_loss"])


if __name__ == "__main__":
  tf.test.main()
