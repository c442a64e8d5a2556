"""MirroredStrategy on two logical CPUs gives the single-device result.

The check runs in a fresh process (logical devices must be configured before
TensorFlow starts); see distributed_check.py.
"""
import json
import os
import subprocess
import sys

from absl.testing import parameterized
import tensorflow as tf

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "distributed_check.py")


class MirroredTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("unrolled", "reverse")
  def test_two_replicas_match_one_device(self, mode):
    out = subprocess.run([sys.executable, CHECK, mode], capture_output=True,
                         text=True, timeout=600, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    self.assertEqual(report["replicas"], 2)
    self.assertGreater(report["hypergradient_norm"], 1e-3)
    # Same hypergradient (float32 round-off), same validation error.
    self.assertLess(report["hypergradient_diff"],
                    1e-5 * report["hypergradient_norm"])
    self.assertLess(report["validation_error_diff"], 1e-5)
    # After two more full rounds: same metrics, students, DLN and teacher.
    self.assertLess(report["round_metric_diff"], 1e-5)
    self.assertLess(report["state_diff"], 1e-5)
    self.assertGreater(report["dln_moved"], 0.0)
    self.assertLess(report["dln_diff"], 1e-2 * report["dln_moved"])


if __name__ == "__main__":
  tf.test.main()
