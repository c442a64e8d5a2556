"""tools/compare_methods.py: one run_seeds command per method, one table."""
import os

import tensorflow as tf

from l2t_tf import config
from l2t_tf.experiments import compare_methods


class CompareMethodsTest(tf.test.TestCase):

  def test_every_method_is_run_and_tabulated(self):
    args = compare_methods.parse_args(["--seeds=2", "--runs_dir=/r"])
    runs, table = compare_methods.commands(args)
    self.assertLen(runs, 8)  # Table 1's seven methods and L2T-DLN.
    for (key, label, gin_file), command in zip(
        compare_methods.DIGITS_METHODS, runs):
      self.assertTrue(os.path.isfile(config.resolve_gin_file(gin_file)))
      self.assertIn(f"--gin_file={gin_file}", command)
      self.assertIn("--seeds=2", command)
      self.assertIn(f"--row={label}=/r/digits_{key}_seeds/seed_*", table)

  def test_method_subset_and_unknown_method(self):
    runs, table = compare_methods.commands(
        compare_methods.parse_args(["--methods=ce,ala"]))
    self.assertLen(runs, 2)
    self.assertLen([a for a in table if a.startswith("--row=")], 2)
    with self.assertRaisesRegex(SystemExit, "unknown"):
      compare_methods.commands(compare_methods.parse_args(["--methods=x"]))


if __name__ == "__main__":
  tf.test.main()
