"""tools/tune_methods.py: the tuning protocol of issue 16."""
import os
import threading
import time

import tensorflow as tf

from l2t_tf.experiments import tune_methods

LR = tune_methods.STUDENT_LR
TLR = "TeacherUpdater.learning_rate"


class FakeRunner:
  """Results from a table {(student lr, teacher lr or None): heldout}."""

  def __init__(self, heldout, fail=()):
    self.heldout, self.fail, self.calls = heldout, set(fail), []

  def run_all(self, method, gin_file, setting, seeds):
    key = (setting[LR], setting.get(TLR))
    self.calls.append((key, tuple(seeds)))
    if key in self.fail:
      return [None for _ in seeds]
    # The test accuracy is the opposite of the held-out one: choosing on
    # the test set would pick another setting.
    return [{"heldout_accuracy": self.heldout[key],
             "test_accuracy": 1 - self.heldout[key]} for _ in seeds]


class ProtocolTest(tf.test.TestCase):

  def test_fixed_loss_method_sweeps_the_student_rate_on_heldout(self):
    runner = FakeRunner({(0.1, None): 0.5, (0.03, None): 0.7,
                         (0.3, None): 0.6, (0.01, None): 0.65})
    result = tune_methods.tune(runner, "ce", "digits_ce.gin", range(3),
                               range(5))
    self.assertEqual(result["chosen"], {LR: 0.03})
    self.assertEqual(result["default"], {LR: 0.1})
    # 0.03 is an edge of the grid: the sweep widens once, to 0.01.
    self.assertEqual([s for s, _ in result["sweep"]],
                     [{LR: 0.1}, {LR: 0.03}, {LR: 0.3}, {LR: 0.01}])
    # The chosen setting on all seeds; the untuned default keeps its
    # selection seeds.
    self.assertEqual(dict(runner.calls[4:]), {(0.03, None): tuple(range(5)),
                                              (0.1, None): tuple(range(3))})

  def test_taught_method_then_sweeps_the_teacher_rate_at_the_chosen_one(self):
    heldout = {(0.1, 1e-3): 0.5, (0.03, 1e-3): 0.4, (0.3, 1e-3): 0.6,
               (1.0, 1e-3): 0.3, (0.3, 1e-3 / 3): 0.55, (0.3, 3e-3): 0.65}
    runner = FakeRunner(heldout)
    result = tune_methods.tune(runner, "l2t_dln", "digits_l2t_dln.gin",
                               range(3), range(5))
    self.assertLen(result["sweep"], 6)
    teacher = [s for s, _ in result["sweep"][4:]]
    self.assertEqual([s[LR] for s in teacher], [0.3, 0.3])
    self.assertAllClose([s[TLR] for s in teacher], [1e-3 / 3, 3e-3])
    self.assertEqual(result["chosen"][LR], 0.3)
    self.assertAllClose(result["chosen"][TLR], 3e-3)

  def test_a_better_rate_beyond_the_edge_is_chosen(self):
    runner = FakeRunner({(0.1, None): 0.5, (0.03, None): 0.4,
                         (0.3, None): 0.6, (1.0, None): 0.7})
    result = tune_methods.tune(runner, "arlf", "digits_arlf.gin", range(2),
                               range(2))
    self.assertEqual(result["chosen"], {LR: 1.0})
    self.assertLen(result["sweep"], 4)  # Widened once only.

  def test_failed_runs_score_zero_and_ties_keep_the_default(self):
    runner = FakeRunner({(0.1, None): 0.5, (0.03, None): 0.5},
                        fail={(0.3, None)})
    result = tune_methods.tune(runner, "ce", "digits_ce.gin", range(2),
                               range(2))
    self.assertEqual(dict((s[LR], v) for s, v in result["sweep"])[0.3], 0.0)
    self.assertEqual(result["chosen"], {LR: 0.1})

  def test_setting_names(self):
    self.assertEqual(tune_methods.setting_name({LR: 0.03}), "lr0.03")
    self.assertEqual(tune_methods.setting_name({LR: 0.1, TLR: 1e-3 / 3}),
                     "lr0.1_tlr0.000333")


class SlotsTest(tf.test.TestCase):

  def test_waiting_runs_start_by_priority(self):
    slots, order = tune_methods._Slots(1), []  # pylint: disable=protected-access

    def wait(priority):
      with slots.hold(priority):
        order.append(priority)

    with slots.hold(0):
      threads = [threading.Thread(target=wait, args=(p,)) for p in (2, 0, 1)]
      for thread in threads:
        thread.start()
      deadline = time.time() + 10
      while len(slots._waiting) < 3 and time.time() < deadline:  # pylint: disable=protected-access
        time.sleep(0.01)
      self.assertEqual(order, [])  # The one slot is held.
    for thread in threads:
      thread.join(10)
    self.assertEqual(order, [0, 1, 2])


class RunnerTest(tf.test.TestCase):
  """One real run and one diverging run through `python -m l2t_tf.main`."""

  def test_runs_once_and_records_failures(self):
    runs_dir = self.get_temp_dir()
    runner = tune_methods.Runner(runs_dir, jobs=1, extra_bindings=[
        "Trainer.max_rounds = 1", "Trainer.teacher_epochs = 1"])
    results = runner.run("ce", "digits_ce.gin", {LR: 0.1}, 0)
    self.assertIn("heldout_accuracy", results)
    path = os.path.join(runner.model_dir("ce", {LR: 0.1}, 0), "results.json")
    stamp = os.path.getmtime(path)
    self.assertEqual(runner.run("ce", "digits_ce.gin", {LR: 0.1}, 0), results)
    self.assertEqual(os.path.getmtime(path), stamp)  # Reused, not rerun.
    self.assertIsNone(runner.run("ce", "digits_ce.gin", {LR: 1e6}, 0))
    with open(os.path.join(runner.model_dir("ce", {LR: 1e6}, 0),
                           "failed.txt")) as f:
      self.assertIn("diverged", f.read())


if __name__ == "__main__":
  tf.test.main()
