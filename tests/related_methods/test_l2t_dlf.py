"""Tests of the L2T-DLF baseline (l2t_tf/related_methods/l2t_dlf.py)."""
import json
import math
import os
import subprocess
import sys

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln_updaters
from l2t_tf.related_methods import l2t_dlf
import gradcheck
import trainer_testlib as lib

DTYPES = (("float32", "float32"), ("float64", "float64"))
ADAM_EPSILON_HAT = 1e-7 / math.sqrt(1 - 0.999)  # Keras Adam, first step.
MIRRORED_CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "dlf_distributed_check.py")


def _sigmoid(t):
  return 1. / (1. + math.exp(-t))


def _log_softmax(row):
  lse = math.log(sum(math.exp(v) for v in row))
  return [v - lse for v in row]


def _observation(progress, train_loss, validation_error):
  return {"progress": tf.constant(progress),
          "train_loss": tf.constant(train_loss),
          "validation_error": tf.constant(validation_error)}


def _built_loss(dtype, num_classes=3):
  loss = l2t_dlf.dlf_loss(dtype=dtype)
  loss(tf.zeros([1], tf.int32), tf.zeros([1, num_classes], dtype))
  return loss


class DLFLossTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*DTYPES)
  def test_closed_form(self, dtype):
    y = tf.constant([0, 2])
    z = [[2., 1., 0.], [0., 1., 3.]]
    log_p = [_log_softmax(row) for row in z]
    loss = l2t_dlf.dlf_loss(dtype=dtype)
    value = loss(y, tf.constant(z, dtype))
    self.assertEqual(value.dtype, tf.as_dtype(dtype))
    # Init W = I, b = 0: -mean sigma(log p_y) = -mean sigma(-CE).
    self.assertAllClose(loss.loss_matrix, np.eye(3))
    self.assertAllClose(loss.loss_bias, np.zeros(3))
    expected = -(_sigmoid(log_p[0][0]) + _sigmoid(log_p[1][2])) / 2
    self.assertAllClose(value, expected, rtol=1e-6)
    # General W, b: row y of W against log p, plus b_y.
    w = [[1., .5, 0.], [0., 1., 0.], [-1., .25, 2.]]
    b = [.1, 0., -.3]
    loss.loss_matrix.assign(w)
    loss.loss_bias.assign(b)
    s0 = sum(w[0][c] * log_p[0][c] for c in range(3)) + b[0]
    s1 = sum(w[2][c] * log_p[1][c] for c in range(3)) + b[2]
    self.assertAllClose(loss(y, tf.constant(z, dtype)),
                        -(_sigmoid(s0) + _sigmoid(s1)) / 2, rtol=1e-6)
    # Labels [B, 1] and logits [B, H, C] (every position is an example).
    self.assertAllClose(loss(y[:, None], tf.constant(z, dtype)),
                        -(_sigmoid(s0) + _sigmoid(s1)) / 2, rtol=1e-6)
    self.assertAllClose(loss(tf.constant([[0, 2]]), tf.constant([z], dtype)),
                        -(_sigmoid(s0) + _sigmoid(s1)) / 2, rtol=1e-6)

  def test_builds_phi_from_the_number_of_classes(self):
    loss = _built_loss("float32", num_classes=5)
    self.assertEqual([tuple(v.shape) for v in loss.trainable_variables],
                     [(5, 5), (5,)])
    self.assertEqual(loss.get_config()["num_classes"], 5)
    copy = l2t_dlf.DLFLoss.from_config(loss.get_config())
    self.assertEqual([tuple(v.shape) for v in copy.trainable_variables],
                     [(5, 5), (5,)])

  def test_gradient_wrt_logits_and_phi_float64(self):
    rng = np.random.default_rng(0)
    loss = _built_loss("float64", num_classes=4)
    loss.loss_matrix.assign(np.eye(4) + 0.3 * rng.normal(size=(4, 4)))
    loss.loss_bias.assign(0.5 * rng.normal(size=4))
    logits = tf.Variable(rng.normal(size=(5, 4)))
    y = tf.constant([0, 3, 1, 1, 2])
    variables = [logits, loss.loss_matrix, loss.loss_bias]
    with tf.GradientTape() as tape:
      value = loss(y, logits)
    grads = tape.gradient(value, variables)
    for seed in range(3):
      analytic, numeric = gradcheck.directional_check(
          variables, lambda: loss(y, logits), grads, eps=1e-6, seed=seed)
      self.assertAllClose(analytic, numeric, rtol=1e-7, atol=1e-10)
    # At W = I, b = 0 the logit gradient is CE's scaled by sigma'(log p_y)/B.
    loss.loss_matrix.assign(np.eye(4))
    loss.loss_bias.assign(np.zeros(4))
    with tf.GradientTape(persistent=True) as tape:
      dlf = loss(y, logits)
      per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
    sig = tf.sigmoid(-per_example)
    scale = (sig * (1. - sig))[:, None]
    ce_grad = tape.jacobian(per_example, logits)  # [B, B, C]
    expected = tf.reduce_sum(ce_grad * scale[:, :, None], 0) / 5.
    self.assertAllClose(tape.gradient(dlf, logits), expected, rtol=1e-10)


class DLFTeacherUpdaterTest(tf.test.TestCase, parameterized.TestCase):

  def _setup(self, dtype, randomise=False):
    keras.utils.set_random_seed(0)
    loss = _built_loss(dtype)
    updater = l2t_dlf.DLFTeacherUpdater(learning_rate=1e-3)
    updater.build(loss.trainable_variables)
    if randomise:  # Non-zero output layer: every teacher weight matters.
      rng = np.random.default_rng(1)
      for v in updater.teacher.trainable_variables:
        v.assign(0.5 * rng.normal(size=v.shape))
      updater.previous_state.assign(rng.normal(size=3))
    grads = [tf.constant(np.linspace(-1, 1, 9).reshape(3, 3), dtype),
             tf.constant([0.5, -2.0, 1e-3], dtype)]
    return loss, updater, grads

  @parameterized.named_parameters(*DTYPES)
  def test_apply_sets_phi_to_the_teacher_output_at_the_new_state(self, dtype):
    loss, updater, grads = self._setup(dtype)
    phi = loss.trainable_variables
    phi0 = dln_updaters.flatten([tf.convert_to_tensor(v) for v in phi])
    # At init mu_theta(s) = Phi_0 for every s.
    self.assertAllClose(updater.teacher(tf.constant([.3, -.5, 1.], dtype)),
                        phi0)
    obs = _observation(0.25, -0.4, 1.5)
    _, metrics = updater.apply(phi, grads, obs)
    state = [0.25, -0.4, math.log1p(1.5)]
    self.assertAllClose(updater.previous_state, state)
    flat = dln_updaters.flatten([tf.convert_to_tensor(v) for v in phi])
    self.assertAllClose(flat, updater.teacher(tf.constant(state, dtype)))
    # First round: s_prev = 0 and the output layer is zero, so only the output
    # bias has a gradient (g itself) and Adam's first step moves Phi by
    # -lr * g / (|g| + eps_hat) whatever the new state.
    g = dln_updaters.flatten(grads).numpy()
    step = -1e-3 * g / (np.abs(g) + ADAM_EPSILON_HAT)
    self.assertAllClose(flat - phi0, step, rtol=1e-4, atol=1e-9)
    self.assertAllClose(metrics["dlf_step_norm"], np.linalg.norm(step),
                        rtol=1e-4)
    self.assertAllClose(metrics["teacher_gradient_norm"], np.linalg.norm(g))
    # The output kernel learns from the second round (it sees h(s_1) != 0),
    # the hidden layer from the third (behind a non-zero output kernel).
    hidden = updater.teacher.kernels[0].numpy()
    self.assertAllEqual(updater.teacher.kernels[1], np.zeros((32, 12)))
    updater.apply(phi, grads, _observation(0.5, -0.6, 1.0))
    self.assertNotAllClose(updater.teacher.kernels[1], np.zeros((32, 12)))
    self.assertAllEqual(updater.teacher.kernels[0], hidden)
    updater.apply(phi, grads, _observation(0.75, -0.7, 0.5))
    self.assertNotAllClose(updater.teacher.kernels[0], hidden)
    self.assertAllClose(
        dln_updaters.flatten([tf.convert_to_tensor(v) for v in phi]),
        updater.teacher(tf.constant([0.75, -0.7, math.log1p(0.5)], dtype)))

  def test_teacher_learning_is_the_vjp_through_mu(self):
    """de/dtheta = (dmu_theta(s_prev)/dtheta)^T de/dPhi, checked by FD."""
    loss, updater, grads = self._setup("float64", randomise=True)
    state = tf.convert_to_tensor(updater.previous_state)
    variables = updater.teacher.trainable_variables
    vjp = updater.teacher_gradient(grads, state)
    flat_g = dln_updaters.flatten(grads)
    objective = lambda: tf.reduce_sum(updater.teacher(state) * flat_g)
    for seed in range(3):
      analytic, numeric = gradcheck.directional_check(
          variables, objective, vjp, eps=1e-6, seed=seed)
      self.assertAllClose(analytic, numeric, rtol=1e-7)
    for g in vjp:
      self.assertGreater(float(tf.reduce_max(tf.abs(g))), 0.0)
    # apply() takes one Adam step on exactly that gradient, at s_prev.
    before = [v.numpy() for v in variables]
    updater.apply(loss.trainable_variables, grads,
                  _observation(0.1, -0.2, 0.3))
    for v, b, g in zip(variables, before, vjp):
      g = g.numpy()
      self.assertAllClose(b - v.numpy(),
                          1e-3 * g / (np.abs(g) + ADAM_EPSILON_HAT),
                          rtol=1e-4, atol=1e-12)


def _dlf_trainer(model_dir, **overrides):
  settings = dict(task=lib.tiny_task(dln=l2t_dlf.dlf_loss),
                  updater=l2t_dlf.DLFTeacherUpdater, unroll_length=1,
                  teacher_epochs=1, train_comparison=False)
  settings.update(overrides)
  return lib.tiny_trainer(model_dir, **settings)


class DLFTrainerTest(tf.test.TestCase):

  def test_trainer_run_checkpoint_and_resume(self):
    """Two rounds by `run`, restore into a new Trainer, a third on both."""
    model_dir = os.path.join(self.get_temp_dir(), "run")
    first = _dlf_trainer(model_dir, max_rounds=2)
    phi0 = [v.numpy() for v in first.dln.trainable_variables]
    self.assertAllClose(phi0[0], np.eye(10))
    teacher0 = [v.numpy() for v in first.updater.teacher_weights.values()]
    results = first.run()
    self.assertEqual(results["rounds_done"], 2)
    self.assertEqual(results["skipped_updates"], 0)
    self.assertTrue(np.isfinite(results["test_loss"]))
    self.assertBetween(results["test_accuracy"], 0.0, 1.0)
    # The checkpoint holds the updater: teacher weights, s_prev, Adam slots.
    saved = lib.state_of(first)
    self.assertEqual(int(first.updater.optimizer.iterations), 2)
    fresh = _dlf_trainer(model_dir)
    self.assertFalse(np.allclose(fresh.updater.previous_state.numpy(),
                                 first.updater.previous_state.numpy()))
    self.assertTrue(fresh.restore())
    restored = lib.state_of(fresh)
    self.assertLen(restored, len(saved))
    for a, b in zip(restored, saved):
      self.assertAllEqual(a, b)
    # Both continue identically: the epoch's third round on both.
    data, _ = first.epoch_rounds(0)
    train, val = next(iter(data.skip(2)))
    for trainer in (first, fresh):
      result = trainer.round(train, val, progress=2 / 3)
      self.assertEqual(result.skipped_updates, 0)
    for a, b in zip(lib.state_of(fresh), lib.state_of(first)):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)
    # After 3 rounds Phi and every teacher weight (the hidden kernel learns
    # from the third round on) have moved, and stay finite.
    for v, w in zip(first.dln.trainable_variables, phi0):
      self.assertNotAllClose(v, w)
      self.assertTrue(np.all(np.isfinite(v.numpy())))
    weights = list(first.updater.teacher_weights.values())
    for v, w in zip(weights, teacher0):
      if v is first.updater.teacher.base:
        self.assertAllEqual(v, w)  # Phi_0, fixed.
      else:
        self.assertNotAllClose(v, w)
      self.assertTrue(np.all(np.isfinite(v.numpy())))
    # Between rounds the DLN is the teacher's output at the last state.
    state = tf.convert_to_tensor(first.updater.previous_state)
    self.assertAllClose(state[0], 2 / 3)  # Progress of the last round.
    self.assertAllClose(
        dln_updaters.flatten([tf.convert_to_tensor(v)
                              for v in first.dln.trainable_variables]),
        first.updater.teacher(state), rtol=1e-6, atol=1e-6)

  def test_two_replicas_match_one_device(self):
    """MirroredStrategy (cross-replica apply): the single-device rounds."""
    out = subprocess.run([sys.executable, MIRRORED_CHECK], capture_output=True,
                         text=True, timeout=600, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    self.assertEqual(report["replicas"], 2)
    self.assertEqual(report["rounds"], 3)
    self.assertGreater(report["dln_moved"], 1e-3)
    self.assertLess(report["round_metric_rel_diff"], 1e-4)
    self.assertLess(report["state_diff"], 1e-5)


if __name__ == "__main__":
  tf.test.main()
