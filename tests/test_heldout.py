"""The held-out selection split (issue 16): fixed, disjoint, never trained on."""
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.data import splits
import trainer_testlib as lib


def _ids(dataset):
  return sorted(int(x) for x in dataset.as_numpy_iterator())


class HoldoutSplitTest(tf.test.TestCase):

  def test_disjoint_complete_and_the_same_every_call(self):
    data = tf.data.Dataset.range(500)
    rest, held, n_rest, n_held = splits.holdout(data, 500, 0.2)
    rest_ids, held_ids = _ids(rest), _ids(held)
    self.assertEqual((len(rest_ids), len(held_ids)), (n_rest, n_held))
    self.assertEmpty(set(rest_ids) & set(held_ids))
    self.assertEqual(sorted(rest_ids + held_ids), list(range(500)))
    self.assertBetween(n_held, 70, 130)  # ~ 0.2 * 500, binomial sd ~ 9.
    self.assertEqual(_ids(splits.holdout(data, 500, 0.2)[1]), held_ids)

  def test_the_epoch_splits_never_draw_a_held_out_example(self):
    data = tf.data.Dataset.range(300)
    rest, held, n_rest, _ = splits.holdout(data, 300, 0.3)
    held_ids = set(_ids(held))
    for epoch in range(3):
      train, val, _, _ = splits.split(rest, n_rest, 0.5, seed=1, epoch=epoch)
      self.assertEmpty(held_ids & (set(_ids(train)) | set(_ids(val))))


class TrainerHeldoutTest(tf.test.TestCase):

  def test_results_have_heldout_metrics_of_both_students(self):
    trainer = lib.tiny_trainer(self.get_temp_dir(), teacher_epochs=1,
                               heldout_ratio=0.25)
    full_size = trainer.task.training_set()[1]
    self.assertLess(trainer.train_size, 0.8 * full_size)
    results = trainer.run()
    for key in ("heldout_accuracy", "heldout_loss",
                "comparison_heldout_accuracy", "comparison_heldout_loss"):
      self.assertIn(key, results)
      self.assertIn(key, results["history"][-1])
    expected = trainer.task.evaluate(trainer.student, trainer.heldout_data)
    self.assertAllClose(results["heldout_accuracy"],
                        expected["test_accuracy"])
    examples = sum(int(tf.shape(y)[0]) for _, y in trainer.heldout_data)
    self.assertEqual(examples + trainer.train_size, full_size)

  def test_default_has_no_heldout_split(self):
    trainer = lib.tiny_trainer(self.get_temp_dir())
    self.assertIsNone(trainer.heldout_data)
    self.assertEqual(trainer.train_size, trainer.task.training_set()[1])
    self.assertNotIn("heldout_accuracy", trainer.evaluator.evaluate())

  def test_bad_ratios_are_user_errors(self):
    for ratio in (-0.1, 1.0, "0.2"):
      with self.subTest(ratio=ratio):
        with self.assertRaisesRegex(errors.UserError, "heldout_ratio"):
          lib.tiny_trainer(self.get_temp_dir(), heldout_ratio=ratio)
    with self.assertRaisesRegex(errors.UserError, "holds out no example"):
      lib.tiny_trainer(self.get_temp_dir(), heldout_ratio=1e-9)


if __name__ == "__main__":
  tf.test.main()
