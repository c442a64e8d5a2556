"""The gin-configurable entry point: teach, evaluate, export, report.

`train_eval()` builds the strategy and the task, the run of `round` (the
method, `build.round = @L2TRound`; `build.build`) and runs it (it
resumes from `model_dir` if a checkpoint is there), exports the learned DLN
as a SavedModel, writes `results.json` (strict JSON, `strict_json`: NaN
results are null, listed in "non_finite") and the operative gin config into
`model_dir`, and returns the results dict (printed by `main.py` as the last
stdout line). With several workers only the chief writes files and logs; the
others export into a temporary directory they delete (saving is collective).
"""
import contextlib
import os
import shutil
import tempfile

from absl import logging
import gin
import tensorflow as tf

from l2t_tf import build as build_lib
from l2t_tf import checks
from l2t_tf import export
from l2t_tf import run_config
from l2t_tf import run_lock
from l2t_tf import strategy as strategy_lib
from l2t_tf import strict_json
from l2t_tf.tasks import classification

DEFAULT_MODEL_DIR = os.path.join("runs", "digits_l2t_dln")


@gin.configurable(denylist=["extra_results", "override_config", "round",
                            "actions"])
def train_eval(model_dir=DEFAULT_MODEL_DIR,
               task=classification.ClassificationTask,
               strategy=strategy_lib.get_strategy, round=None,  # pylint: disable=redefined-builtin
               extra_results=None, override_config=False, actions=()):
  """Runs L2T-DLN on `task` in `model_dir`; returns the results dict.

  The chief holds `model_dir`'s lock for the whole run (`run_lock`); a run
  that resumes must have the configuration it started with
  (`run_config.check_resume`) unless `override_config`. A new `model_dir`
  is created only once the run can start: it is checked without being
  created (`checks.run_directory`: local, its nearest existing directory
  writable), the task and the `Trainer` are built (what fails on missing
  data or a bad binding; nothing is written there), then it is created and
  locked. An existing one is locked before building (a second run on it
  stops at once).

  `round`: the method, a round class of `rounds`, overriding the gin
  binding `build.round` (None: that binding, L2TRound by default).
  `actions`: more callables of each round's and epoch's output (`actions`).
  """
  distribution = strategy() if callable(strategy) else strategy  # First op.
  chief = strategy_lib.is_chief(distribution)
  if not chief:
    logging.set_verbosity(logging.WARNING)  # Logs from the chief only.
  model_dir = checks.run_directory("train_eval.model_dir", model_dir)
  with contextlib.ExitStack() as lock:
    existed = os.path.isdir(model_dir)
    if existed:
      _create_and_lock(lock, model_dir, chief)
    task = task() if isinstance(task, type) else task
    chosen = {} if round is None else {"round": round}  # Else gin's.
    run = build_lib.build(task, model_dir, distribution,
                          extra_actions=actions, **chosen)  # Collective.
    if not existed:
      _create_and_lock(lock, model_dir, chief)
    return _train_eval(run, model_dir, task, distribution, chief,
                       extra_results, override_config)


def _create_and_lock(stack, model_dir, chief):
  """Creates `model_dir` (checked by writing); the chief locks it."""
  checks.writable_directory("train_eval.model_dir", model_dir)
  if chief:
    stack.enter_context(run_lock.hold(model_dir))


def _train_eval(run, model_dir, task, distribution, chief, extra_results,
                override_config):
  # After the build read its bindings: everything is bound.
  overridden = run_config.check_resume(
      model_dir, run.checkpoint_dir,
      resuming=run.checkpoints.latest() is not None,
      override=override_config, write=chief)
  if chief:
    with tf.io.gfile.GFile(os.path.join(model_dir, "operative_config.gin"),
                           "w") as f:
      f.write(gin.operative_config_str())
  results = run.run()
  if overridden:
    results["config_overrides"] = [f"{name}: {old} -> {new}"
                                   for name, old, new in overridden]
  path = None  # A fixed-loss run has no DLN.
  if run.dln is not None:
    path = os.path.abspath(_export(run.dln, model_dir, task.name, chief))
  results.update(dln_export_path=path,
                 model_dir=os.path.abspath(model_dir), task=task.name,
                 worker=strategy_lib.worker_index(distribution))
  results.update(extra_results or {})
  if chief:
    with tf.io.gfile.GFile(os.path.join(model_dir, "results.json"), "w") as f:
      strict_json.dump(results, f, indent=1)
  return results


def _export(dln, model_dir, task_name, chief):
  """Exports the DLN on every worker; keeps the chief's copy only."""
  if chief:
    return export.export_dln(dln, os.path.join(model_dir, "dln_export"),
                             {"task": task_name})
  scratch = tempfile.mkdtemp(prefix="l2t_dln_export_")
  try:
    export.export_dln(dln, os.path.join(scratch, "dln_export"),
                      {"task": task_name})
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  return os.path.join(model_dir, "dln_export")  # Where the chief wrote it.
