"""The teaching loop: traces, NaN guard, exact resume, clear input errors."""
import os

import numpy as np
import tensorflow as tf

from l2t_tf import related_methods
from l2t_tf import config
from l2t_tf import errors
from l2t_tf import dln as dln_lib
from l2t_tf.rounds import fallback
import trainer_testlib as lib


class TeachingLoopTest(tf.test.TestCase):

  def test_traces_once_and_skips_non_finite_hypergradients(self):
    trainer = lib.tiny_trainer(self.get_temp_dir(), teacher_epochs=1)
    data, rounds = trainer.epoch_rounds(0)
    self.assertEqual(rounds, 3)
    batches = list(data)
    dln_before = [v.numpy() for v in trainer.dln.trainable_variables]
    for train, val in batches:
      result = trainer.round(train, val)
      self.assertEqual(result.skipped_updates, 0)
      self.assertEqual(result.student_steps, 2 * 2)  # 2 blocks of N = 2.
    # Stage I and stage III are traced once each, not once per round.
    self.assertEqual(trainer.round.summary()["traces"], 2)
    self.assertNotAllClose(trainer.dln.trainable_variables[0], dln_before[0])
    # A NaN in the validation batch makes the hypergradient non-finite.
    dln_now = [v.numpy() for v in trainer.dln.trainable_variables]
    state_now = [v.numpy() for pair in trainer.updater.state for v in pair]
    train, (xv, yv) = batches[0]
    xv = tf.tensor_scatter_nd_update(xv, [[0, 0, 0, 0]], [np.nan])
    result = trainer.round(train, (xv, yv))
    self.assertEqual(result.skipped_updates, 1)
    for v, w in zip(trainer.dln.trainable_variables, dln_now):
      self.assertAllEqual(v, w)
    for v, w in zip([v for p in trainer.updater.state for v in p], state_now):
      self.assertAllEqual(v, w)
    self.assertEqual(trainer.round.summary()["traces"], 2)

  def test_resume_reaches_the_uninterrupted_result(self):
    base = self.get_temp_dir()
    interrupted = lib.tiny_trainer(os.path.join(base, "a"), max_rounds=4,
                                   checkpoint_every_rounds=1)
    partial = interrupted.run()
    self.assertEqual(partial["rounds_done"], 4)  # Stopped inside epoch 2.
    resumed = lib.tiny_trainer(os.path.join(base, "a")).run()
    straight = lib.tiny_trainer(os.path.join(base, "b")).run()
    self.assertEqual(resumed["rounds_done"], 6)
    self.assertEqual(straight["rounds_done"], 6)
    self.assertAllClose(resumed["test_accuracy"], straight["test_accuracy"])
    self.assertAllClose(resumed["comparison_test_accuracy"],
                        straight["comparison_test_accuracy"])
    self.assertLen(resumed["history"], 2)
    a = lib.tiny_trainer(os.path.join(base, "a"))
    b = lib.tiny_trainer(os.path.join(base, "b"))
    a.restore(), b.restore()
    for x, y in zip(a.checkpoint_variables(), b.checkpoint_variables()):
      self.assertAllClose(x, y, rtol=1e-5, atol=1e-6)

  def test_final_results_reuse_the_last_epochs_evaluation(self):
    """Issue 14: a run ending with an epoch evaluates each student once."""
    trainer = lib.tiny_trainer(self.get_temp_dir(), teacher_epochs=1)
    calls, evaluate = [], trainer.task.evaluate
    trainer.task.evaluate = lambda *a: calls.append(a[0]) or evaluate(*a)
    results = trainer.run()
    self.assertEqual(calls, [trainer.student, trainer.comparison_student])
    fresh = evaluate(trainer.student, trainer.test_data)
    for name, value in fresh.items():
      self.assertAllClose(results[name], value)
    self.assertAllClose(
        results["comparison_test_accuracy"],
        evaluate(trainer.comparison_student,
                 trainer.test_data)["test_accuracy"])

  def test_fixed_loss_method_trains_only_the_student(self):
    trainer = lib.tiny_trainer(self.get_temp_dir(), method="fixed_loss",
                               teacher_epochs=1)
    self.assertIsNone(trainer.dln)
    self.assertIsNone(trainer.comparison_student)
    results = trainer.run()
    self.assertNotIn("comparison_test_accuracy", results)
    self.assertGreater(results["test_accuracy"], 0.1)
    self.assertEqual(results["traces"], 0)
    self.assertIsNone(results["hypergradient_mode"])
    self.assertEqual(results["student_steps"], 3 * 2 * 2)

  def test_learnable_fixed_loss_parameters_are_trained(self):
    """Barron's adaptive loss: its shape/scale take SGD steps too."""
    loss = related_methods.adaptive_robust_loss()
    trainer = lib.tiny_trainer(self.get_temp_dir(), method="fixed_loss",
                               teacher_epochs=1, task=lib.tiny_task(
                                   fixed_loss=loss))
    before = [v.numpy() for v in loss.trainable_variables]
    self.assertNotEmpty(before)
    trainer.run()
    for v, b in zip(loss.trainable_variables, before):
      self.assertNotAllClose(v, b)
      self.assertTrue(np.all(np.isfinite(v.numpy())))


def _fail_once_after_running(stage, error):
  """Makes `stage`'s first call run and then raise `error`.

  The failed stage III of issue 13 had already written the student back
  when it raised (measured), so the fallback must restore, not assume.
  The stage's compiled function is replaced, in the round's list too.
  """
  calls, real = [], stage.function

  def failing(*args):
    result = real(*args)
    if not calls:
      calls.append(1)
      raise error
    return result
  failing.experimental_get_tracing_count = real.experimental_get_tracing_count
  functions = stage.compiled.functions
  functions[functions.index(real)] = stage.function = failing


class FallbackToReverseTest(tf.test.TestCase):
  """Issue 13: unrolled mode failing in TensorFlow retries in reverse mode."""

  def test_failed_first_round_reruns_in_reverse_mode(self):
    base = self.get_temp_dir()
    fell_back = lib.tiny_trainer(os.path.join(base, "a"), teacher_epochs=1)
    _fail_once_after_running(
        fell_back.round.inner.stage3_unroll, tf.errors.AlreadyExistsError(
            None, None, "Resource __per_step_0/gradient_tape/while/"
            "gradients/AddN_13/tmp_var/iter:2 already exists\nmore"))
    with self.assertLogs("absl", level="WARNING") as logs:
      results = fell_back.run()
    reverse = lib.tiny_trainer(os.path.join(base, "b"), teacher_epochs=1,
                               hypergradient_mode="reverse")
    want = reverse.run()
    warnings = [r.getMessage() for r in logs.records
                if "unrolled mode failed" in r.getMessage()]
    self.assertLen(warnings, 1)
    self.assertNotIn("\n", warnings[0])
    self.assertIn("AlreadyExistsError in round 1", warnings[0])
    self.assertEqual(results["hypergradient_mode"], "reverse")
    self.assertIn("AddN_13/tmp_var", results["hypergradient_fallback"])
    self.assertEqual(want["hypergradient_mode"], "reverse")
    self.assertIsNone(want["hypergradient_fallback"])
    self.assertEqual(results["rounds_done"], want["rounds_done"])
    # The same run as one in reverse mode from the start (round-off aside):
    # the failed attempt's writes were undone.
    for x, y in zip(lib.state_of(fell_back), lib.state_of(reverse)):
      self.assertAllClose(x, y, rtol=1e-5, atol=1e-6)
    self.assertAllClose(results["test_accuracy"], want["test_accuracy"])

  def test_which_errors_fall_back(self):
    falls_back = fallback.is_fallback_error
    self.assertTrue(falls_back(tf.errors.AlreadyExistsError(None, None, "")))
    self.assertTrue(falls_back(tf.errors.ResourceExhaustedError(
        None, None, "OOM when allocating tensor")))
    self.assertTrue(falls_back(tf.errors.AbortedError(  # oneDNN on CPU.
        None, None, "Operation received an exception:Status: 1, message: "
        "could not create a memory object, in file mkl_conv_ops.cc")))
    self.assertFalse(falls_back(tf.errors.AbortedError(None, None, "peer")))
    self.assertFalse(falls_back(tf.errors.InvalidArgumentError(None, None,
                                                               "")))

  def test_unrolled_results_say_so(self):
    results = lib.tiny_trainer(self.get_temp_dir(), teacher_epochs=1,
                               max_rounds=1).run()
    self.assertEqual(results["hypergradient_mode"], "unrolled")
    self.assertIsNone(results["hypergradient_fallback"])

  def test_later_or_other_errors_are_not_swallowed(self):
    late = lib.tiny_trainer(self.get_temp_dir(), teacher_epochs=1)
    late.round.calls = fallback.FALLBACK_ROUNDS  # Past them.
    _fail_once_after_running(
        late.round.inner.stage1, tf.errors.AlreadyExistsError(None, None, "x"))
    with self.assertRaises(tf.errors.AlreadyExistsError):
      late.run()
    other = lib.tiny_trainer(self.get_temp_dir(), teacher_epochs=1)
    _fail_once_after_running(
        other.round.inner.stage1, tf.errors.InvalidArgumentError(None, None,
                                                                 "y"))
    with self.assertRaises(tf.errors.InvalidArgumentError):
      other.run()
    self.assertEqual(other.round.summary()["hypergradient_mode"], "unrolled")
    with self.assertRaisesRegex(ValueError, "already in reverse"):
      lib.tiny_trainer(self.get_temp_dir(), hypergradient_mode="reverse"
                       ).round.fallback_to_reverse("test")


class BadInputTest(tf.test.TestCase):

  def test_settings_are_checked_before_training(self):
    for kwargs, name in (({"unroll_length": 0}, "unroll_length"),
                         ({"validation_ratio": 1.0}, "validation_ratio"),
                         ({"validation_ratio": 0.0}, "validation_ratio"),
                         ({"method": "l2t"}, "method"),
                         ({"hypergradient_mode": "fwd"}, "hypergradient_mode"),
                         ({"stage3": "x"}, "stage3")):
      with self.assertRaisesRegex(errors.UserError, name):
        lib.tiny_trainer(self.get_temp_dir(), **kwargs)

  def test_misspelt_gin_parameter_is_named(self):
    with self.assertRaisesRegex(errors.UserError, "unrol_length"):
      config.parse([], ["Trainer.unrol_length = 3"])
    with self.assertRaisesRegex(errors.UserError, "Traner"):
      config.parse([], ["Traner.unroll_length = 3"])
    with self.assertRaisesRegex(errors.UserError, "no_such.gin"):
      config.parse(["no_such.gin"], [])

  def test_non_scalar_dln_is_rejected(self):
    class PerSample(dln_lib.PairwiseDLN):
      def call(self, y_true, y_pred):
        return tf.reduce_sum(y_pred, -1)
    task = lib.tiny_task(dln=lambda dtype=None: PerSample(dtype=dtype))
    with self.assertRaisesRegex(errors.UserError, "dln"):
      lib.tiny_trainer(self.get_temp_dir(), task=task)

  def test_labels_outside_the_model_are_rejected_before_training(self):
    def five_classes(input_shape, num_classes, dtype=None):
      del num_classes
      return lib.dense_student(input_shape, 5, dtype)
    trainer = lib.tiny_trainer(self.get_temp_dir(),
                               task=lib.tiny_task(student=five_classes))
    with self.assertRaisesRegex(errors.UserError, "labels"):
      trainer.run()
    self.assertEqual(int(trainer.rounds_done), 0)


if __name__ == "__main__":
  tf.test.main()
