"""history.json: kept to what the restored checkpoint saw."""
import os

import tensorflow as tf

from l2t_tf import experiment
from l2t_tf import history as history_lib
import trainer_testlib as lib


class HistoryTest(tf.test.TestCase):

  def test_history_keeps_what_the_checkpoint_saw(self):
    model_dir = self.get_temp_dir()
    trainer = lib.tiny_trainer(model_dir, max_rounds=2,
                               checkpoint_every_rounds=1)
    trainer.run()
    history = history_lib.History(model_dir)
    counters = experiment.Counters()
    counters.rounds_done.assign(1)
    data = history.load(counters)
    self.assertEqual([r["round"] for r in data["rounds"]], [1])
    self.assertTrue(os.path.exists(history.path))


if __name__ == "__main__":
  tf.test.main()
