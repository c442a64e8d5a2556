"""tools/make_table.py on hand-made run directories."""
import json
import os

import tensorflow as tf

from l2t_tf.experiments import make_table


class MakeTableTest(tf.test.TestCase):

  def _runs(self, name, accuracies, times):
    for seed, (acc, t) in enumerate(zip(accuracies, times)):
      directory = os.path.join(self.get_temp_dir(), name, f"seed_{seed}")
      os.makedirs(directory)
      with open(os.path.join(directory, "results.json"), "w") as f:
        json.dump({"primary_metric": "test_accuracy", "test_accuracy": acc,
                   "median_round_time_s": t}, f)
    return os.path.join(self.get_temp_dir(), name, "seed_*")

  def test_mean_std_and_round_time(self):
    ce = self._runs("ce", [0.80, 0.90], [1.0, 3.0])
    l2t = self._runs("l2t", [0.91, 0.93, 0.95], [2.0, 4.0, 9.0])
    out = os.path.join(self.get_temp_dir(), "table")
    rows = make_table.main([f"--row=CE={ce}", f"--row=L2T-DLN={l2t}",
                            "--title=T", f"--output={out}"])
    (ce_label, ce_cell), (_, l2t_cell) = rows
    self.assertEqual(ce_label, "CE")
    self.assertAllClose([ce_cell["mean"], ce_cell["std"]],
                        [0.85, 0.0707106781])
    self.assertAllClose([l2t_cell["mean"], l2t_cell["std"], l2t_cell["n"]],
                        [0.93, 0.02, 3])
    self.assertEqual(l2t_cell["median_round_time_s"], 4.0)
    with open(f"{out}.md") as f:
      text = f.read()
    self.assertIn("| L2T-DLN | test_accuracy | 93.00 ± 2.00 | 91.00 | 3 | "
                  " | 4.000 |", text)
    self.assertEqual(l2t_cell["min"], 0.91)
    with open(f"{out}.json") as f:
      self.assertLen(json.load(f)["rows"], 2)

  def test_missing_runs_say_what_to_do(self):
    with self.assertRaisesRegex(SystemExit, "run_seeds"):
      make_table.main([f"--row=X={self.get_temp_dir()}/nothing/*"])


if __name__ == "__main__":
  tf.test.main()
