"""The experiment builder: the round is the method, checkpoints by name."""
import tempfile

import gin
import tensorflow as tf

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


def _kind(round_):
  """The round's class (a hypergradient round is in its fallback)."""
  if isinstance(round_, rounds.ReverseModeFallback):
    return type(round_.inner)
  return type(round_)


class ResolveRoundTest(tf.test.TestCase):
  """The round is the method: bound in gin, or chosen by the older bindings."""

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
        self.assertIs(_kind(built.round), kind)
        self.assertEqual(built.teaches, kind is not rounds.FixedLossRound)

  def test_a_round_bound_in_gin_is_the_older_bindings_round(self):
    """`build.round` and its options = `Trainer.updater`, `.stage3`."""
    gin.clear_config()
    gin.parse_config(["HypergradientRound.updater = @DLFTeacherUpdater",
                      "L2TRound.stage3 = 'release'"])
    try:
      dlf = experiment.build_experiment(_dlf_task(),
                                        tf.distribute.get_strategy(),
                                        rounds.HypergradientRound)
      l2t = experiment.build_experiment(lib.tiny_task(),
                                        tf.distribute.get_strategy(),
                                        rounds.L2TRound)
    finally:
      gin.clear_config()
    self.assertIsInstance(dlf.updater, l2t_dlf.DLFTeacherUpdater)
    self.assertEqual(l2t.round.stages, 1)
    self.assertEqual(l2t.round.inner.stage3, "release")
    legacy = _build(stage3="release")
    self.assertEqual(legacy.round.stages, 1)

  def test_the_method_is_bound_once(self):
    with self.assertRaisesRegex(errors.UserError, "not both"):
      experiment.build_experiment(lib.tiny_task(),
                                  tf.distribute.get_strategy(),
                                  rounds.L2TRound, method="fixed_loss")

  def test_a_fixed_loss_twin_keeps_only_stage3(self):
    """A CE twin includes its L2T-DLN file: teaching options are ignored."""
    built = _build(method="fixed_loss", stage3="release", update_guard=True,
                   hypergradient_mode="reverse")
    self.assertEqual(built.round.stages, 1)
    self.assertIsNone(built.dln)

  def test_the_release_and_the_guard_need_the_lstm_teacher(self):
    for kwargs in (dict(updater=dln_updaters.OptimizerUpdater),
                   dict(updater=ala.ALAControllerUpdater, task=_ala_task())):
      for option in (dict(stage3="release"),
                     dict(stage3="release", update_guard=True)):
        with self.subTest(**option), self.assertRaisesRegex(
            errors.UserError, "TeacherUpdater"):
          _build(**kwargs, **option)

  def test_a_round_checks_its_updater(self):
    gin.clear_config()
    gin.bind_parameter("L2TRound.updater", dln_updaters.OptimizerUpdater)
    try:
      with self.assertRaisesRegex(errors.UserError,
                                  "L2TRound.updater: OptimizerUpdater"):
        experiment.build_experiment(lib.tiny_task(),
                                    tf.distribute.get_strategy(),
                                    rounds.L2TRound)
    finally:
      gin.clear_config()

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


if __name__ == "__main__":
  tf.test.main()
