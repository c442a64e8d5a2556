"""ALA (l2t_tf/related_methods/ala.py): loss, controller, teaching loop, resume."""
import math
import os
import tempfile

from absl.testing import parameterized
import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import config
from l2t_tf.related_methods import ala
from l2t_tf.tasks import classification
import gradcheck
import trainer_testlib as lib

DTYPES = (("float32", "float32"), ("float64", "float64"))


def _built_loss(num_classes, dtype="float32", squash="sigmoid"):
  loss = ala.ala_loss(squash=squash, dtype=dtype)
  loss(tf.constant([0]), tf.zeros([1, num_classes], dtype))
  return loss


def _controller(loss, unroll_length, **kwargs):
  """(updater, step): step(observation) is one round's apply, as the teaching
  round calls it after the first N of every 2N student steps."""
  updater = ala.ALAControllerUpdater(**kwargs)
  updater.build(loss.trainable_variables)
  # As the teaching round does: the DLN variables are read inside.
  apply = tf.function(lambda obs: updater.apply(loss.trainable_variables,
                                                obs))
  rounds = []

  def step(observation):
    observation["student_steps"] = tf.constant(
        unroll_length + 2 * unroll_length * len(rounds), tf.int64)
    rounds.append(1)
    return apply(observation)
  return updater, step


def _observation(metric, progress=0.5, error=1.0):
  return {"validation_metric": tf.constant(metric, tf.float32),
          "validation_error": tf.constant(error, tf.float32),
          "train_loss": tf.constant(0.0), "progress": tf.constant(progress)}


def _policy_forward(updater, states):
  """The policy MLP in numpy: (last hidden features, action probabilities)."""
  x = np.asarray(states, np.float64)
  kernels = [k.numpy() for k in updater.kernels]
  biases = [b.numpy() for b in updater.biases]
  for kernel, bias in zip(kernels[:-1], biases[:-1]):
    x = np.maximum(x @ kernel + bias, 0.0)
  logits = x @ kernels[-1] + biases[-1]
  probs = np.exp(logits - logits.max(1, keepdims=True))
  return x, probs / probs.sum(1, keepdims=True)


class ALALossTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*DTYPES)
  def test_identity_init_closed_form(self, dtype):
    # p = (1/2, 1/4, 1/4) for the first sample (y = 0), uniform for the
    # second (y = 1): p_y = 1/2 and 1/3.
    y = tf.constant([0, 1])
    z = tf.constant([[math.log(2.0), 0.0, 0.0], [0.0, 0.0, 0.0]], dtype)
    ce = ala.ala_loss(squash="none", dtype=dtype)
    self.assertAllClose(ce(y, z), (math.log(2.0) + math.log(3.0)) / 2)
    self.assertEqual(ce.phi.shape, (3, 3))  # Built from the logits.
    self.assertAllEqual(ce.phi, np.eye(3))
    self.assertEqual(ce(y, z).dtype, dtype)
    paper = ala.ala_loss(dtype=dtype)  # -sigmoid(log p_y) = -p_y / (1 + p_y)
    self.assertAllClose(paper(y, z), -(1.0 / 3.0 + 1.0 / 4.0) / 2)
    self.assertLen(paper.trainable_variables, 1)

  @parameterized.named_parameters(*DTYPES)
  def test_class_pair_coefficients_closed_form(self, dtype):
    loss = _built_loss(3, dtype, squash="none")
    loss.phi.assign([[1.0, -0.5, 0.0], [-0.5, 1.0, 0.2], [0.0, 0.2, 1.0]])
    z = tf.constant([[math.log(2.0), 0.0, 0.0]], dtype)  # p = 1/2, 1/4, 1/4
    # y = 0: s = log 1/2 - 0.5 log 1/4 = 0.
    self.assertAllClose(loss(tf.constant([0]), z), 0.0)
    # y = 1: s = -0.5 log 1/2 + log 1/4 + 0.2 log 1/4.
    s = 0.5 * math.log(2.0) - 1.2 * math.log(4.0)
    self.assertAllClose(loss(tf.constant([1]), z), -s)
    loss.squash = "sigmoid"
    self.assertAllClose(loss(tf.constant([[1]]), z),  # Labels [B, 1] too.
                        -1.0 / (1.0 + math.exp(-s)))

  @parameterized.parameters("sigmoid", "none")
  def test_gradient_matches_finite_differences_float64(self, squash):
    rng = np.random.default_rng(0)
    loss = _built_loss(4, "float64", squash)
    off = np.triu(rng.uniform(-0.8, 0.8, (4, 4)), 1)
    loss.phi.assign(np.eye(4) + off + off.T)
    y = tf.constant([0, 3, 1, 1, 2])
    logits = tf.Variable(rng.normal(size=(5, 4)))
    with tf.GradientTape() as tape:
      value = loss(y, logits)
    gradient = tape.gradient(value, logits)
    for seed in range(3):
      analytic, numeric = gradcheck.directional_check(
          [logits], lambda: loss(y, logits), [gradient], 1e-5, seed=seed)
      self.assertAllClose(analytic, numeric, rtol=1e-7, atol=1e-10)

  def test_gin_binding_makes_it_the_dln(self):
    config.parse(gin_bindings=["ClassificationTask.dln = @ala_loss",
                               "ala_loss.squash = 'none'"])
    try:
      task = classification.ClassificationTask(dataset="digits")
      loss = task.build_dln()
      self.assertIsInstance(loss, ala.ALALoss)
      self.assertEqual(loss.squash, "none")
    finally:
      gin.clear_config()


class ControllerTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(
      ("float32", 30, {0, 3, 6, 9}),
      ("float64", 30, {0, 3, 6, 9}),
      ("float32", 10, set(range(10))),
      # 2N = 10 does not divide 25: the first evaluation >= 25 steps later.
      ("float32", 25, {0, 3, 6, 9}))
  def test_acts_at_the_step_interval_only(self, dtype, every_steps, acting):
    loss = _built_loss(5, dtype)
    updater, step = _controller(loss, unroll_length=5,
                                every_steps=every_steps)
    for call in range(10):  # Evaluations at steps 5, 15, 25, ...
      before = loss.phi.numpy()
      _, metrics = step(_observation(0.5 - 0.01 * call, call / 10))
      after = loss.phi.numpy()
      acted = call in acting
      self.assertEqual(float(metrics["ala_acted"]), float(acted), call)
      if not acted:
        self.assertAllEqual(after, before)
      self.assertAllEqual(after, after.T)
      self.assertAllEqual(np.diag(after), np.ones(5))
      steps = (after - np.eye(5)) / 0.1
      self.assertAllClose(steps, np.round(steps), atol=1e-4)
    self.assertEqual(int(updater.actions_taken), len(acting))
    self.assertEqual(int(updater.optimizer.iterations), len(acting) - 1)
    self.assertNotAllClose(loss.phi, np.eye(5))  # 10 pairs, 4+ actions.

  @parameterized.named_parameters(*DTYPES)
  def test_dtype_of_phi_and_a_stateless_policy_init(self, dtype):
    policies = []
    for global_seed in (1, 2):  # The initial policy depends on `seed` only.
      keras.utils.set_random_seed(global_seed)
      updater, _ = _controller(_built_loss(4, dtype), unroll_length=5, seed=3)
      policies.append([v.numpy() for v in updater.policy_variables()])
      floats = {v.dtype for v in updater.variables if v.dtype.is_floating}
      self.assertEqual(floats, {tf.as_dtype(dtype)})
    for first, second in zip(*policies, strict=True):
      self.assertAllEqual(first, second)
    self.assertEqual([v.name for v in updater.policy_variables()],
                     [f"policy_{kind}_{i}:0" for i in range(3)
                      for kind in ("kernel", "bias")])
    self.assertAllEqual(policies[0][-2], np.zeros((32, ala.NUM_ACTIONS)))
    limit = math.sqrt(6.0 / (ala.NUM_FEATURES + 32))
    self.assertLessEqual(np.abs(policies[0][0]).max(), limit)

  def test_window_metric_is_the_discounted_average(self):
    loss = _built_loss(3)
    updater, step = _controller(loss, unroll_length=5, every_steps=30,
                                metric_discount=0.9, reward="difference")
    metrics = [0.8, 0.5, 0.4, 0.2]  # At steps 5 (acts), 15, 25, 35 (acts).
    for m in metrics:
      step(_observation(m))
    weights = np.array([0.9**20, 0.9**10, 1.0])
    window = weights @ metrics[1:] / weights.sum()
    self.assertAllClose(updater.previous_metric, window)
    self.assertAllClose(updater.last_reward, 0.8 - window)

  @parameterized.parameters("difference", "sign")
  def test_reinforce_step_hand_computed(self, reward):
    loss = _built_loss(4)
    learning_rate, decay = 0.5, 0.5
    updater, step = _controller(
        loss, unroll_length=5, every_steps=10, optimizer="sgd",
        learning_rate=learning_rate, reward=reward,
        reward_baseline_decay=decay)
    shape = lambda r: np.sign(r) if reward == "sign" else r
    step(_observation(0.6, 0.1, 2.0))  # Acts, nothing to learn from yet.
    self.assertAllEqual(updater.optimizer.iterations, 0)
    states, actions = (updater.previous_state.numpy(),
                       updater.previous_action.numpy())
    self.assertAllClose(states[:, 1:], np.tile([0.1, 0.6, 0.0, 2.0], (6, 1)))
    self.assertAllClose(states[:, 0], np.zeros(6))  # Phi_ij at identity.
    before = [v.numpy() for v in updater.policy_variables()]
    features, probs = _policy_forward(updater, states)
    self.assertAllClose(probs, np.full((6, 3), 1 / 3))  # Zero output layer.

    step(_observation(0.4, 0.2, 1.5))  # r = 0.6 - 0.4 (or its sign).
    r1 = shape(0.2)
    advantage = r1 - 0.0
    onehot = np.eye(3)[actions]
    after = [v.numpy() for v in updater.policy_variables()]
    # d/d(output bias) of sum_ij log pi(a_ij | s_ij) = sum_ij (e_a - pi).
    self.assertAllClose(after[-1] - before[-1],
                        learning_rate * advantage * (onehot - probs).sum(0))
    self.assertAllClose(after[-2] - before[-2], learning_rate * advantage *
                        features.T @ (onehot - probs), atol=1e-6)
    for b, a in zip(before[:-2], after[:-2]):  # Zero output layer: no
      self.assertAllEqual(a, b)                # gradient below it yet.
    self.assertAllClose(updater.last_reward, r1)
    self.assertAllClose(updater.reward_baseline, (1 - decay) * r1)

    states, actions = (updater.previous_state.numpy(),
                       updater.previous_action.numpy())
    self.assertAllClose(states[0, 1:], [0.2, 0.4, 0.2, 1.5])
    features, probs = _policy_forward(updater, states)
    before = after
    step(_observation(0.5, 0.3, 1.0))  # r = 0.4 - 0.5, advantage r - b.
    r2 = shape(-0.1)
    advantage = r2 - (1 - decay) * r1
    after = [v.numpy() for v in updater.policy_variables()]
    onehot = np.eye(3)[actions]
    self.assertAllClose(after[-1] - before[-1],
                        learning_rate * advantage * (onehot - probs).sum(0),
                        atol=1e-6)
    self.assertAllClose(after[-2] - before[-2], learning_rate * advantage *
                        features.T @ (onehot - probs), atol=1e-6)
    self.assertAllClose(updater.reward_baseline,
                        decay * (1 - decay) * r1 + (1 - decay) * r2)

  def test_needs_the_ala_loss_and_the_student_steps(self):
    updater = ala.ALAControllerUpdater()
    with self.assertRaisesRegex(ValueError, "ala_loss"):
      updater.build([tf.Variable(tf.zeros([3, 4]))])
    loss = _built_loss(3)
    updater.build(loss.trainable_variables)
    observation = _observation(0.5)
    with self.assertRaisesRegex(ValueError, "student steps"):
      updater.apply(loss.trainable_variables, observation)


class TeachingLoopTest(tf.test.TestCase):
  """Tiny digits runs: 6 rounds of 2N = 4 steps, an action every 8 steps."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.straight = cls.trainer("straight")
    cls.results = cls.straight.run()

  @classmethod
  def trainer(cls, name, **kwargs):
    task = lib.tiny_task(student=lib.dense_student, dln=ala.ala_loss)
    return lib.tiny_trainer(
        os.path.join(cls.root, name), task=task, train_comparison=False,
        updater=ala.ALAControllerUpdater(every_steps=8),
        **kwargs)

  def test_run_moves_phi_and_gives_finite_results(self):
    results, trainer = self.results, self.straight
    self.assertEqual(results["rounds_done"], 6)
    for key in ("test_accuracy", "test_loss"):
      self.assertTrue(np.isfinite(results[key]), key)
    self.assertBetween(results["test_accuracy"], 0.0, 1.0)
    # Evaluations at steps 2, 6, ..., 22: actions at 2, 10 and 18, and a
    # policy-gradient step at the last two.
    self.assertEqual(int(trainer.updater.actions_taken), 3)
    self.assertEqual(int(trainer.updater.optimizer.iterations), 2)
    phi = trainer.dln.phi.numpy()
    self.assertNotAllClose(phi, np.eye(10))
    self.assertAllEqual(phi, phi.T)
    self.assertTrue(np.all(np.isfinite(phi)))

  def test_resume_takes_the_same_actions(self):
    partial = self.trainer("resumed", max_rounds=4).run()
    self.assertEqual(partial["rounds_done"], 4)
    resumed = self.trainer("resumed")
    self.assertEqual(resumed.run()["rounds_done"], 6)
    # The action after the restart (round 5) is the uninterrupted one, and
    # so is everything else the checkpoint holds.
    self.assertAllEqual(resumed.updater.previous_action,
                        self.straight.updater.previous_action)
    self.assertAllEqual(resumed.dln.phi, self.straight.dln.phi)
    for a, b in zip(resumed.checkpoint_variables(),
                    self.straight.checkpoint_variables()):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)


if __name__ == "__main__":
  tf.test.main()
