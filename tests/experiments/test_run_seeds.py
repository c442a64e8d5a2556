"""tools/run_seeds.py: the table math and format (the runs are subprocesses)."""
import numpy as np
import tensorflow as tf

from l2t_tf.experiments import run_seeds


class RunSeedsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.per_seed = [
        {"seed": 0, "test_accuracy": 0.90, "comparison_test_accuracy": 0.85,
         "median_round_time_s": 2.0, "rounds_done": 4},
        {"seed": 1, "test_accuracy": 0.80, "comparison_test_accuracy": 0.86,
         "median_round_time_s": 4.0, "rounds_done": 4},
        {"seed": 2, "test_accuracy": 0.70, "comparison_test_accuracy": 0.87,
         "median_round_time_s": 3.0, "rounds_done": 4}]

  def test_summary_is_mean_and_sample_std(self):
    summary = run_seeds.summarise(self.per_seed)
    self.assertAllClose(summary["test_accuracy"]["mean"], 0.8)
    self.assertAllClose(summary["test_accuracy"]["std"],
                        np.std([0.9, 0.8, 0.7], ddof=1))
    self.assertAllClose(summary["comparison_test_accuracy"]["mean"], 0.86)
    self.assertEqual(summary["median_round_time_s"]["median"], 3.0)

  def test_baseline_column_only_when_present(self):
    for r in self.per_seed:
      del r["comparison_test_accuracy"]
    summary = run_seeds.summarise(self.per_seed)
    self.assertNotIn("comparison_test_accuracy", summary)
    table = run_seeds.markdown("x", self.per_seed, summary, "cmd")
    self.assertNotIn("baseline", table)
    self.assertIn("**80.00 ± 10.00**", table)
    self.assertEqual(len([l for l in table.splitlines()
                          if l.startswith("| ")]), 1 + 3 + 1)

  def test_arguments(self):
    args = run_seeds.parse_args(["--gin_file=a.gin", "--gin_bindings=X.y = 1"])
    self.assertEqual(args.seeds, 5)
    self.assertEqual(args.gin_bindings, ["X.y = 1"])


if __name__ == "__main__":
  tf.test.main()
