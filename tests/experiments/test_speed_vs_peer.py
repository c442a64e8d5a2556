"""speed_vs_peer's quiet check (its flags: test_benchmark_flags.py)."""
import os

import tensorflow as tf

from l2t_tf.experiments import speed_vs_peer


class QuietTest(tf.test.TestCase):
  """speed_vs_peer's quiet check counts other running tasks, not the load."""

  def test_runnable_count_of_a_loadavg_line(self):
    self.assertEqual(speed_vs_peer.runnable("2.31 1.97 1.67 3/512 4242\n"), 3)
    others = speed_vs_peer.others_running(samples=3, interval_s=0.01)
    if os.path.exists(speed_vs_peer.LOADAVG):
      self.assertGreaterEqual(others, 0)  # This process is not counted.
    else:
      self.assertIsNone(others)



if __name__ == "__main__":
  tf.test.main()
