"""What makes the DLN teach (issue 12): initialisations, warm start, guard.

Teacher initialisation as the release (PyTorch's LSTMCell defaults), the
properness of a DLN, the warm start to a proper loss, the guarded update
and the release's update density, each with assertions that fail on a
wrong implementation.
"""
import json
import math
import os

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import dln_updaters
from l2t_tf import dln_warm_start
from l2t_tf import errors
from l2t_tf import loss_surface
from l2t_tf import teacher as teacher_lib
import trainer_testlib as lib


class TeacherInitialisationTest(tf.test.TestCase, parameterized.TestCase):

  def test_release_initialisation_is_pytorchs_lstm_cell(self):
    """Weights U(-1/sqrt(H), 1/sqrt(H)); bias the sum of two such draws."""
    keras.utils.set_random_seed(0)
    teacher = teacher_lib.LSTMTeacher(initialization="release")
    for cell in teacher.cells:
      limit = 1.0 / math.sqrt(cell.units)
      kernel, recurrent, bias = [w.numpy() for w in cell.weights]
      for weights in (kernel, recurrent):
        self.assertLessEqual(np.abs(weights).max(), limit)
      self.assertLessEqual(np.abs(bias).max(), 2 * limit)
      if cell.units > 1:  # Enough numbers for the moments.
        self.assertAllClose(recurrent.std(), limit / math.sqrt(3), rtol=0.05)
        self.assertAllClose(bias.std(), limit * math.sqrt(2 / 3), rtol=0.2)
        self.assertGreater(np.abs(bias).max(), limit)  # A sum, not one draw.
    first, second = teacher.cells[1].weights[1], teacher.cells[2].weights[1]
    self.assertNotAllClose(first, second)  # One initializer per weight.

  @parameterized.parameters("float32", "float64")
  def test_first_outputs_release_versus_keras(self, dtype):
    """The release's teacher moves the DLN ~100x more at the first round."""
    gradient = tf.constant(
        np.random.default_rng(0).normal(size=2000) * 1e-3, dtype)
    sizes = {}
    for initialization in teacher_lib.INITIALIZATIONS:
      keras.utils.set_random_seed(0)
      teacher = teacher_lib.LSTMTeacher(initialization=initialization,
                                        output_scale=1.0, dtype=dtype)
      step, _ = teacher(gradient, teacher.initial_state(2000))
      sizes[initialization] = float(tf.reduce_mean(tf.abs(step)))
      if initialization == "release":  # A drift: one sign for every coordinate.
        self.assertIn(float(np.mean(step.numpy() > 0)), (0.0, 1.0))
    self.assertGreater(sizes["release"], 0.01)
    self.assertLess(sizes["keras"], 2e-3)
    self.assertGreater(sizes["release"] / sizes["keras"], 30)

  def test_zero_last_cell_starts_at_zero_and_learns(self):
    keras.utils.set_random_seed(0)
    teacher = teacher_lib.LSTMTeacher(zero_last_cell=True, dtype="float64")
    gradient = tf.constant(np.linspace(-1e-2, 1e-2, 9))
    state = teacher.initial_state(9)
    with tf.GradientTape() as tape:
      step, _ = teacher(gradient, state)
      objective = tf.reduce_sum(step * gradient)
    self.assertAllEqual(step, np.zeros(9))
    grads = tape.gradient(objective, teacher.trainable_variables)
    self.assertGreater(float(tf.linalg.global_norm(grads)), 0.0)

  @parameterized.parameters("float32", "float64")
  def test_descent_skip_starts_as_sign_descent(self, dtype):
    """Zero last cell + skip: T(g) = -gamma * sign(g) where |g| >= e^-10."""
    keras.utils.set_random_seed(0)
    teacher = teacher_lib.LSTMTeacher(zero_last_cell=True, descent_skip=True,
                                      output_scale=1e-3, dtype=dtype)
    gradient = tf.constant([0.3, -2e-3, 1e-4, -1e-6, 0.0], dtype)
    step, _ = teacher(gradient, teacher.initial_state(5))
    # |g| < e^-10: the second feature is e^k g, so the step is -gamma e^k g.
    small = -math.exp(10.0) * -1e-6
    self.assertAllClose(step, 1e-3 * np.array([-1, 1, -1, small, 0]),
                        rtol=1e-5)
    # The read-out is learned: the VJP of Eq. 8 reaches it.
    with tf.GradientTape() as tape:
      step, _ = teacher(gradient, teacher.initial_state(5))
    grads = tape.gradient(step, [teacher.skip],
                          output_gradients=tf.ones_like(step))
    self.assertGreater(float(tf.norm(grads[0])), 0.0)

  def test_unknown_initialisation(self):
    with self.assertRaisesRegex(errors.UserError, "initialization"):
      teacher_lib.LSTMTeacher(initialization="torch")


class PropernessAndWarmStartTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("sigmoid4", "softmax2")
  def test_properness_of_linear_dlns(self, input_mode):
    """f = -a + b is proper everywhere, its negation nowhere, f = b half."""
    dln = dln_lib.PairwiseDLN(hidden_units=(), input_mode=input_mode,
                              dtype="float64")
    width = 4 if input_mode == "sigmoid4" else 2
    for weights, expected in (([-1, 1], 1.0), ([1, -1], 0.0),
                              ([0.5, 1], 0.0), ([-1, 0], 0.0)):
      kernel = np.zeros((width, 1))
      kernel[:2, 0] = weights
      dln.kernels[0].assign(kernel)
      self.assertEqual(loss_surface.properness(dln), expected)

  @parameterized.parameters(("sigmoid4", "float32", False),
                            ("softmax2", "float64", True))
  def test_warm_start_fits_a_proper_loss(self, input_mode, dtype, use_bias):
    """After the fit the DLN is (W1) to a few % and proper almost everywhere.

    (A bias-free softmax2 MLP is positively homogeneous in its two inputs and
    cannot fit (W1); the warm start's docstring says so.)
    """
    keras.utils.set_random_seed(2)  # A draw that is improper everywhere.
    dln = dln_lib.PairwiseDLN(input_mode=input_mode, dtype=dtype,
                              use_bias=use_bias)
    if input_mode == "sigmoid4":
      self.assertLess(loss_surface.properness(dln), 0.05)
    fit = dln_warm_start.warm_start(dln, steps=800)
    self.assertLess(fit["warm_start_rmse"], 0.1)
    self.assertGreater(fit["warm_start_properness"], 0.95)
    self.assertEqual(fit["warm_start_properness"],
                     loss_surface.properness(dln))
    # The fitted surface is the target's at interior points (values, W1).
    p_true, p_wrong = tf.constant([0.3, 0.8], dtype), tf.constant([0.6, 0.1],
                                                                 dtype)
    out = dln.mlp(loss_surface.feature_rows(dln, p_true, p_wrong))
    target = dln_warm_start.target_loss("bce", p_true, p_wrong)
    self.assertAllClose(out, target, atol=0.25)
    # As a loss it now raises the true logit and lowers the wrong ones.
    logits = tf.zeros([4, 5], dtype)
    labels = tf.constant([0, 1, 2, 3])
    with tf.GradientTape() as tape:
      tape.watch(logits)
      loss = dln(labels, logits)
    grad = tape.gradient(loss, logits).numpy()
    onehot = np.eye(5)[labels.numpy()]
    self.assertTrue(np.all(grad[onehot == 1] < 0))
    self.assertTrue(np.all(grad[onehot == 0] > 0))

  def test_unknown_target(self):
    with self.assertRaisesRegex(errors.UserError, "target"):
      dln_warm_start.warm_start(dln_lib.PairwiseDLN(), target="hinge")


class _SignFlipUpdater(dln_updaters.TeacherUpdater):
  """A teacher whose update turns the DLN into its negation (harmful)."""

  def apply(self, dln_variables, hypergradients, observation=None):
    context, metrics = super().apply(dln_variables, hypergradients,
                                     observation)
    last = dln_variables[-1]
    last.assign(-last)
    return context, metrics


class GuardAndDensityTest(tf.test.TestCase):

  def _trainer(self, updater=dln_updaters.TeacherUpdater, **overrides):
    settings = dict(stage3="release", update_guard=True, dln_warm_start=True,
                    validation_bn_mode="train", teacher_epochs=1)
    settings.update(overrides)
    return lib.tiny_trainer(self.get_temp_dir(), updater=updater, **settings)

  def test_release_stage3_draws_only_the_n_batches_it_uses(self):
    trainer = self._trainer()
    data, _ = trainer.epoch_rounds(0)
    (xs, _), _ = next(iter(data))
    self.assertEqual(xs.shape[:3], (1, lib.TINY["unroll_length"],
                                    lib.TINY["batch_size"]))
    # Each round counts its own steps: N in the release's, 2N in the paper's.
    n = lib.TINY["unroll_length"]
    self.assertEqual(trainer.round(*next(iter(data))).student_steps, n)
    paper = lib.tiny_trainer(self.get_temp_dir())
    (xs, ys), val = next(iter(paper.epoch_rounds(0)[0]))
    self.assertEqual(xs.shape[0], 2)
    self.assertEqual(paper.round((xs, ys), val).student_steps, 2 * n)

  def test_harmful_update_is_rejected_and_the_round_undone(self):
    """e_2 > e_1: phi_0 and stage I's student are kept (teacher learns)."""
    flipped = self._trainer(updater=_SignFlipUpdater)
    kept = self._trainer(updater=_SignFlipUpdater, update_guard=False)
    flipped.student.set_weights(kept.student.get_weights())
    data, _ = flipped.epoch_rounds(0)
    train, val = next(iter(data))
    dln_before = [v.numpy() for v in flipped.dln.trainable_variables]
    teacher_before = [v.numpy() for v in flipped.updater.teacher.variables]
    metrics = flipped.round(train, val).diagnostics
    self.assertGreater(metrics["e2_minus_e1"], 0.0)  # The flip hurt.
    self.assertEqual(metrics["update_accepted"], 0.0)
    self.assertEqual(metrics["update_helped"], 0.0)
    for v, b in zip(flipped.dln.trainable_variables, dln_before):
      self.assertAllEqual(v, b)
    self.assertNotAllClose(flipped.updater.teacher.variables[0],
                           teacher_before[0])  # Stage III still learned.
    # The student is stage I's: N steps on phi_0 from theta_0.
    theta, _ = flipped.round.inner.runner.weights()
    kept.dln.set_weights(dln_before)
    kept.round.inner.runner.plain_steps(
        kept.round.inner.taught.loss,
        tf.nest.map_structure(lambda t: t[0], train))
    for a, b in zip(theta, kept.round.inner.runner.weights()[0]):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)
    # Without the guard the harmful DLN stays.
    kept_metrics = kept.round(train, val).diagnostics
    self.assertEqual(kept_metrics["update_accepted"], 1.0)

  def test_properness_guard_rejects_an_improper_dln(self):
    """No DLN is proper on more than the whole square: q > 1 rejects all.

    (A binding accepts q in [0, 1] only; the round's attribute is set here.)
    """
    trainer = self._trainer(update_guard_min_properness=1.0)
    trainer.round.inner.guard_min_properness = 1.5
    data, _ = trainer.epoch_rounds(0)
    train, val = next(iter(data))
    before = [v.numpy() for v in trainer.dln.trainable_variables]
    metrics = trainer.round(train, val).diagnostics
    self.assertEqual(metrics["update_accepted"], 0.0)
    self.assertBetween(metrics["dln_properness"], 0.0, 1.0)
    for v, b in zip(trainer.dln.trainable_variables, before):
      self.assertAllEqual(v, b)
    with self.assertRaisesRegex(errors.UserError, "min_properness"):
      self._trainer(update_guard=False, update_guard_min_properness=0.5)

  def test_guard_needs_the_release_stage3(self):
    with self.assertRaisesRegex(errors.UserError, "update_guard"):
      lib.tiny_trainer(self.get_temp_dir(), update_guard=True)

  def test_bad_validation_bn_mode(self):
    with self.assertRaisesRegex(errors.UserError, "validation_bn_mode"):
      lib.tiny_trainer(self.get_temp_dir(), validation_bn_mode="eval")

  def test_diagnostics_in_history_and_results(self):
    trainer = self._trainer(teacher_epochs=2)
    results = trainer.run()
    for key in ("fraction_updates_helped", "fraction_updates_accepted",
                "mean_teacher_cosine", "dln_relative_change",
                "dln_properness", "warm_start_rmse"):
      self.assertIn(key, results)
    self.assertBetween(results["fraction_updates_accepted"], 0.0, 1.0)
    self.assertGreater(results["dln_relative_change"], 0.0)
    with open(os.path.join(trainer.model_dir, "history.json")) as f:
      history = json.load(f)
    self.assertLen(history["rounds"], 6)
    for entry in history["rounds"]:
      for key in ("e1", "e2", "e2_minus_e1", "update_helped",
                  "update_accepted", "teacher_cosine", "dln_relative_change"):
        self.assertIn(key, entry)
      self.assertBetween(entry["teacher_cosine"], -1.0, 1.0)
      self.assertAllClose(entry["e2_minus_e1"], entry["e2"] - entry["e1"],
                          rtol=1e-5, atol=1e-6)
    self.assertEqual([e["epoch"] for e in history["epochs"]], [1, 2])
    for entry in history["epochs"]:
      self.assertBetween(entry["dln_properness"], 0.0, 1.0)
    # The warm start makes the DLN proper before teaching.
    self.assertGreater(results["warm_start_properness"], 0.95)
