"""Two localhost workers teach a BatchNorm student as one process does.

The runs of tests/test_strategy_multi_worker.py (`l2t_tf.launch` with two
workers running multi_worker_main.py, and one process without TF_CONFIG)
with the digits BatchNorm student instead of the BatchNorm-free one: each
worker sees half of every batch, so only synchronised statistics (the
default) give the one-process run. `setUpClass` starts both runs together.
With L2T_SLOW_TESTS=1, two more: the same workers with per-replica
statistics (they differ), and a worker that stalls (SIGSTOP), caught
although the statistics' all-reduces carry no per-op timeout.
"""
import os
import shutil
import sys
import tempfile
import time
import unittest

import tensorflow as tf

import test_strategy_multi_worker as lib

STUDENT = ["ClassificationTask.student = @digits_cnn",
           "digits_cnn.widths = (4, 8, 8)"]
BINDINGS = STUDENT + [b for b in lib.BINDINGS if "student" not in b]
SLOW = bool(os.environ.get("L2T_SLOW_TESTS"))


def _flags(model_dir, extra=()):
  bindings = [f"train_eval.model_dir = '{model_dir}'"] + BINDINGS + list(extra)
  return [f"--gin_bindings={b}" for b in bindings]


def _job(root, name, workers, extra=(), fault=None, timeout_s=None):
  """`workers` = 1: one process; else `l2t_tf.launch` with that many."""
  if workers == 1:
    command = [sys.executable, "-m", "multi_worker_main"]
  else:
    command = [sys.executable, "-m", "l2t_tf.launch",
               f"--num_workers={workers}", "--worker_module=multi_worker_main"]
    if timeout_s is not None:
      command += [f"--collective_timeout_s={timeout_s}",
                  f"--stop_grace_s={timeout_s}"]
    command.append("--")
  return lib.Job(command + _flags(os.path.join(root, name), extra),
                 os.path.join(root, name + "_state"), fault)


class SyncBatchNormWorkersTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix="l2t_sync_bn_workers_test_")
    deadline = time.monotonic() + 2 * lib.JOB_TIMEOUT_S
    cls.single = _job(cls.root, "single", 1)
    cls.multi = _job(cls.root, "multi", 2)
    if SLOW:
      cls.per_replica = _job(cls.root, "per_replica", 2,
                             ["sync_batch_norm.enabled = False"])
      cls.stalled = _job(cls.root, "stalled", 2, fault="stop:1:1",
                         timeout_s=lib.STALL_TIMEOUT_S)
    for job in [cls.single, cls.multi] + (
        [cls.per_replica, cls.stalled] if SLOW else []):
      job.wait(deadline)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _assert_succeeded(self, job):
    self.assertEqual(job.process.returncode, 0, job.text()[-4000:])

  def _assert_match(self, one, workers, start):
    for group in ("student", "dln", "teacher"):
      moved = lib._max_diff(start, one, group)  # pylint: disable=protected-access
      self.assertGreater(moved, 1e-6, group)
      for worker in workers:
        diff = lib._max_diff(one, worker, group)  # pylint: disable=protected-access
        self.assertLess(diff, min(1e-5, 1e-2 * moved), group)

  def test_two_workers_match_one_process(self):
    self._assert_succeeded(self.single)
    self._assert_succeeded(self.multi)
    one, two = self.single.results(), self.multi.results()
    self.assertEqual(two["rounds_done"], lib.ROUNDS)
    self.assertEqual(two["test_accuracy"], one["test_accuracy"])
    self.assertAllClose(two["test_loss"], one["test_loss"], rtol=1e-5)
    workers = [self.multi.state(i) for i in (0, 1)]
    self._assert_match(self.single.state(0), workers,
                       self.multi.state(0, "initial"))
    # Moving statistics included: every checkpointed value, both workers.
    self.assertLess(lib._max_diff(workers[0], workers[1]), 1e-6)  # pylint: disable=protected-access

  @unittest.skipUnless(SLOW, "L2T_SLOW_TESTS=1")
  def test_per_replica_statistics_differ(self):
    self._assert_succeeded(self.per_replica)
    one, other = self.single.state(0), self.per_replica.state(0)
    self.assertGreater(lib._max_diff(one, other, "student"), 1e-3)  # pylint: disable=protected-access

  @unittest.skipUnless(SLOW, "L2T_SLOW_TESTS=1")
  def test_stalled_worker_is_caught_by_the_heartbeats(self):
    job = self.stalled
    self.assertNotEqual(job.process.returncode, 0, job.text()[-4000:])
    fault = job.first(r"\[worker 1\] test fault: stop")
    error = job.first(r"\[worker 0\] error: worker 0: lost contact")
    self.assertIsNotNone(fault, job.text()[-4000:])
    self.assertIsNotNone(error, job.text()[-4000:])
    self.assertLess(error[0] - fault[0], 60.0)


if __name__ == "__main__":
  tf.test.main()
