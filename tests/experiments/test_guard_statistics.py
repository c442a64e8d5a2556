"""tools/guard_statistics.py (issue 23): batch noise and update effect."""
import numpy as np
import tensorflow as tf

from l2t_tf.experiments import guard_statistics


def _history(noise, effect, rounds=3000, per_batch=5, seed=0):
  """e1 = smooth progress + the luck of the round's validation batch."""
  rng = np.random.RandomState(seed)
  luck = rng.normal(0, noise, rounds // per_batch + 1)
  history = []
  for i in range(1, rounds + 1):
    e1 = 2.0 * np.exp(-i / 1000) + luck[(i - 1) // per_batch]
    history.append({"round": i, "e1": e1, "e2": e1 - effect * (i % 2 * 2 - 1),
                    "update_accepted": float(i % 2)})
  return history


class GuardStatisticsTest(tf.test.TestCase):

  def test_recovers_the_batch_noise_and_the_effect(self):
    stats = guard_statistics.statistics(_history(0.05, 0.004), 5)
    self.assertAllClose(stats["e_val_batch_noise"], 0.05, rtol=0.1)
    self.assertAllClose(stats["median_abs_update_effect"], 0.004)
    self.assertAllClose(stats["fraction_helped"], 0.5)
    self.assertAllClose(stats["fraction_accepted"], 0.5)
    self.assertAllClose(stats["effect_over_noise"], 0.08, rtol=0.1)

  def test_no_batch_noise(self):
    stats = guard_statistics.statistics(_history(0.0, 0.004), 5)
    self.assertLess(stats["e_val_batch_noise"], 1e-3)

  def test_too_short(self):
    self.assertIsNone(guard_statistics.statistics(_history(0.05, 0.0, 1), 5))


if __name__ == "__main__":
  tf.test.main()
