"""`l2t_tf.main` with test hooks, a worker of test_strategy_multi_worker.py.

  PYTHONPATH=tests python -m l2t_tf.launch --worker_module=multi_worker_main \
      -- <main flags>

Registers `trainer_testlib.dense_student` with gin as `dense_student` (no
BatchNorm, so sharded replicas take exactly the full-batch steps) and reads
two environment variables:
  L2T_TEST_STATE_DIR: each worker writes its learned values (student, DLN,
    teacher and everything checkpointed, `trainer_testlib.state_of`) before
    and after the run to <dir>/{initial,final}_<worker>.npz.
  L2T_TEST_FAULT="kill:<worker>:<round>" or "stop:<worker>:<round>": that
    worker sends itself SIGKILL (dies) or SIGSTOP (stalls) right after it
    saved the checkpoint of round <round>.
Each worker also appends its thread count after every save to
<dir>/threads_<worker>.txt (the collectives' watchdog threads, if any).
"""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
import gin
import numpy as np

from l2t_tf import main as main_lib
from l2t_tf import strategy as strategy_lib
from l2t_tf import build
from l2t_tf import trainer as trainer_lib
import trainer_testlib

gin.external_configurable(trainer_testlib.dense_student, "dense_student")


def _fault(trainer):
  spec = os.environ.get("L2T_TEST_FAULT")
  if not spec:
    return
  kind, worker, at_round = spec.split(":")
  if (strategy_lib.worker_index(trainer.strategy) == int(worker) and
      int(trainer.rounds_done) == int(at_round)):
    sys.stderr.write(f"test fault: {kind} after round {at_round}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL if kind == "kill" else signal.SIGSTOP)


def _threads():
  with open("/proc/self/status") as status:
    return int(re.search(r"Threads:\s+(\d+)", status.read()).group(1))


def _record_threads(trainer):
  out = os.environ.get("L2T_TEST_STATE_DIR")
  if out and os.path.exists("/proc/self/status"):
    index = strategy_lib.worker_index(trainer.strategy)
    with open(os.path.join(out, f"threads_{index}.txt"), "a") as f:
      f.write(f"{int(trainer.rounds_done)} {_threads()}\n")


def _hooked_save(save):
  def wrapper(self):
    path = save(self)
    _record_threads(self)
    _fault(self)
    return path
  return wrapper


def _dump_state(trainer, when):
  out = os.environ.get("L2T_TEST_STATE_DIR")
  if not out:
    return
  groups = dict(student=trainer.student.variables, dln=trainer.dln.variables,
                teacher=list(trainer.updater.teacher_weights.values()),
                all=trainer.checkpoint_variables())
  arrays = {f"{name}_{i}": v.numpy() for name, variables in groups.items()
            for i, v in enumerate(variables)}
  index = strategy_lib.worker_index(trainer.strategy)
  np.savez(os.path.join(out, f"{when}_{index}.npz"), **arrays)


def _hooked_run(run):
  def wrapper(self):
    _dump_state(self, "initial")
    results = run(self)
    _dump_state(self, "final")
    return results
  return wrapper


trainer_lib.Trainer.save = _hooked_save(trainer_lib.Trainer.save)
build.Run.run = _hooked_run(build.Run.run)

if __name__ == "__main__":
  app.run(main_lib.main)
