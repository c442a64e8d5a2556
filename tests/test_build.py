"""The experiment builder: one round per method, checkpoints by name, actions."""
import io
import os
import sys
import tempfile
import types
from unittest import mock

import tensorflow as tf

from l2t_tf import actions
from l2t_tf import dln_updaters
from l2t_tf import errors
from l2t_tf import experiment
from l2t_tf import rounds
from l2t_tf.related_methods import ala
from l2t_tf.related_methods import l2t_dlf
import trainer_testlib as lib

N = lib.TINY["unroll_length"]


def _build(method="l2t_dln", updater=dln_updaters.TeacherUpdater, task=None,
           **kwargs):
  return experiment.build_experiment(
      task or lib.tiny_task(), tf.distribute.get_strategy(), method=method,
      updater=updater, **kwargs)


def _ala_task():
  return lib.tiny_task(dln=lambda dtype=None: ala.ala_loss(dtype=dtype))


def _dlf_task():
  return lib.tiny_task(dln=lambda dtype=None: l2t_dlf.dlf_loss(dtype=dtype))


class MakeRoundTest(tf.test.TestCase):
  """The updater's kind picks the round; options it has not are errors."""

  def test_each_kind_of_method_gets_its_round(self):
    cases = [
        (dict(), rounds.L2TRound),
        (dict(updater=dln_updaters.OptimizerUpdater),
         rounds.HypergradientRound),
        (dict(updater=l2t_dlf.DLFTeacherUpdater, task=_dlf_task()),
         rounds.HypergradientRound),
        (dict(updater=ala.ALAControllerUpdater, task=_ala_task()),
         rounds.ControllerRound),
        (dict(method="fixed_loss"), rounds.FixedLossRound),
    ]
    for kwargs, kind in cases:
      with self.subTest(kind.__name__):
        built = _build(**kwargs)
        self.assertIs(type(built.round), kind)
        self.assertEqual(built.teaches, kind is not rounds.FixedLossRound)

  def test_the_release_and_the_guard_need_the_lstm_teacher(self):
    for kwargs in (dict(updater=dln_updaters.OptimizerUpdater),
                   dict(updater=ala.ALAControllerUpdater, task=_ala_task())):
      for option in (dict(stage3="release"),
                     dict(stage3="release", update_guard=True)):
        with self.subTest(**option), self.assertRaisesRegex(
            errors.UserError, "TeacherUpdater"):
          _build(**kwargs, **option)

  def test_fixed_loss_builds_no_dln(self):
    built = _build(method="fixed_loss")
    self.assertIsNone(built.dln)
    self.assertIsNone(built.updater)
    self.assertIsNone(built.comparison_student)

  def test_not_an_updater(self):
    with self.assertRaisesRegex(errors.UserError, "not a DLN updater"):
      _build(updater=dln_updaters.DLNUpdater)


class StudentStepsTest(tf.test.TestCase):
  """Each round counts its own SGD steps (issue 14: not 2N everywhere)."""

  def test_steps_per_round(self):
    cases = [(dict(), 2 * N), (dict(stage3="release"), N),
             (dict(method="fixed_loss"), 2 * N),
             (dict(method="fixed_loss", stage3="release"), N),
             (dict(updater=ala.ALAControllerUpdater, task=_ala_task()), 2 * N),
             (dict(updater=dln_updaters.OptimizerUpdater), 2 * N)]
    for overrides, steps in cases:
      with self.subTest(str(overrides)):
        trainer = lib.tiny_trainer(tempfile.mkdtemp(dir=self.get_temp_dir()),
                                   max_rounds=2, teacher_epochs=1,
                                   **overrides)
        results = trainer.run()
        self.assertEqual(results["student_steps"], 2 * steps)

  def test_controller_sees_the_steps_taken(self):
    """ALA's observation: steps before the round + stage I's N."""
    trainer = lib.tiny_trainer(self.get_temp_dir(), task=_ala_task(),
                               updater=ala.ALAControllerUpdater)
    data, _ = trainer.epoch_rounds(0)
    train, val = next(iter(data))
    trainer.round(train, val, student_steps=40)
    self.assertEqual(int(trainer.updater.last_observation_step), 40 + N)


def _checkpoint_keys(path):
  return {name for name, _ in tf.train.list_variables(path)}


class NamedCheckpointTest(tf.test.TestCase):
  """Every weight is saved under its name, and a mismatch is an error."""

  def test_dln_and_teacher_are_saved_by_name(self):
    trainer = lib.tiny_trainer(self.get_temp_dir(), max_rounds=1)
    trainer.run()
    keys = _checkpoint_keys(tf.train.latest_checkpoint(
        trainer.checkpoint_dir))
    self.assertContainsSubset(
        {"dln/kernel_0/.ATTRIBUTES/VARIABLE_VALUE",
         "dln_initial/kernel_0/.ATTRIBUTES/VARIABLE_VALUE",
         "updater/teacher_weights/lstm_0.Skernel/.ATTRIBUTES/VARIABLE_VALUE",
         "student_steps/.ATTRIBUTES/VARIABLE_VALUE"}, keys)
    # Every variable of the run is in the checkpoint, none twice.
    variables = trainer.checkpoint_variables()
    self.assertLen({id(v) for v in variables}, len(variables))
    held = (list(trainer.student.variables) +
            list(trainer.comparison_student.variables) +
            list(trainer.dln.variables) +
            list(trainer.updater.teacher.trainable_variables))
    ids = {id(v) for v in variables}
    self.assertTrue(all(id(v) in ids for v in held))

  def test_a_different_experiment_is_not_restored_into(self):
    model_dir = self.get_temp_dir()
    lib.tiny_trainer(model_dir, max_rounds=1).run()
    other = lib.tiny_trainer(model_dir, updater=dln_updaters.TeacherUpdater(
        hidden_units=(8, 8)))
    with self.assertRaisesRegex(errors.UserError,
                                "new train_eval.model_dir"):
      other.restore()

  def test_learnable_fixed_loss_is_saved(self):
    from l2t_tf import related_methods  # pylint: disable=g-import-not-at-top
    trainer = lib.tiny_trainer(
        self.get_temp_dir(), method="fixed_loss", max_rounds=1,
        task=lib.tiny_task(fixed_loss=related_methods.adaptive_robust_loss()))
    trainer.run()
    keys = _checkpoint_keys(tf.train.latest_checkpoint(
        trainer.checkpoint_dir))
    self.assertTrue(any(k.startswith("fixed_loss/") for k in keys), keys)


class _Recorder(actions.Action):

  def __init__(self):
    self.calls = []

  def start(self, loop):
    self.calls.append(("start", int(loop.rounds_done)))

  def epoch_start(self, loop, epoch, rounds):
    self.calls.append(("epoch_start", epoch, rounds))

  def round_end(self, loop, metrics):
    self.calls.append(("round_end", int(loop.rounds_done),
                       metrics["student_steps"]))

  def epoch_end(self, loop, epoch, entry):
    self.calls.append(("epoch_end", epoch, entry["rounds_done"]))

  def end(self, loop):
    self.calls.append(("end", int(loop.rounds_done)))


class ActionsTest(tf.test.TestCase):

  def test_hooks_run_in_loop_order(self):
    trainer = lib.tiny_trainer(self.get_temp_dir(), teacher_epochs=1,
                               rounds_per_epoch=2)
    recorder = _Recorder()
    trainer.actions.append(recorder)
    trainer.run()
    self.assertEqual(recorder.calls, [
        ("start", 0), ("epoch_start", 0, 2), ("round_end", 1, 2 * N),
        ("round_end", 2, 2 * N), ("epoch_end", 0, 2), ("end", 2)])

  def test_default_actions(self):
    trainer = lib.tiny_trainer(self.get_temp_dir())
    kinds = [type(a) for a in trainer.actions]
    self.assertEqual(kinds, [actions.ProgressBar, actions.Summaries,
                             actions.History, actions.DLNSurface,
                             actions.Checkpoint])
    fixed = lib.tiny_trainer(self.get_temp_dir(), method="fixed_loss")
    self.assertNotIn(actions.DLNSurface, [type(a) for a in fixed.actions])

  def test_progress_bar_shows_e_val_not_the_dln_loss(self):
    counters = types.SimpleNamespace(round_in_epoch=tf.Variable(0))
    loop = types.SimpleNamespace(teacher_epochs=1, counters=counters)
    teaching = {"train_loss": -3.25, "e1": 0.75, "round_time_s": 0.5}
    rounds = [dict(teaching, e2=0.5), teaching,  # Stage III or stage I only.
              {"train_loss": 2.25, "round_time_s": 0.5}]  # A fixed loss.
    bars = []
    for metrics in rounds:
      with mock.patch.object(sys, "stderr", io.StringIO()) as stderr:
        bar = actions.ProgressBar()
        bar.epoch_start(loop, 0, rounds=1)
        bar.round_end(loop, metrics)
        bar.end(loop)
      bars.append(stderr.getvalue())
    self.assertIn("e_val=0.500, s=0.50", bars[0])
    self.assertIn("e_val=0.750, s=0.50", bars[1])
    self.assertIn("loss=2.250, s=0.50", bars[2])
    for bar in bars[:2]:
      self.assertNotIn("loss", bar)

  def test_history_keeps_what_the_checkpoint_saw(self):
    model_dir = self.get_temp_dir()
    trainer = lib.tiny_trainer(model_dir, max_rounds=2,
                               checkpoint_every_rounds=1)
    trainer.run()
    history = actions.History(model_dir)
    counters = experiment.Counters()
    counters.rounds_done.assign(1)
    data = history.load(counters)
    self.assertEqual([r["round"] for r in data["rounds"]], [1])
    self.assertTrue(os.path.exists(history.path))
