"""The gin-configurable entry point: teach, evaluate, export, report.

`train_eval()` builds the strategy and the task, runs the `Trainer` (which
resumes from `model_dir` if a checkpoint is there), exports the learned DLN
as a SavedModel, writes `results.json` and the operative gin config into
`model_dir`, and returns the results dict (printed by `main.py` as the last
stdout line).
"""
import json
import os

import gin
import tensorflow as tf

from l2t_tf import export
from l2t_tf import strategy as strategy_lib
from l2t_tf import trainer as trainer_lib
from l2t_tf.tasks import classification

DEFAULT_MODEL_DIR = os.path.join("runs", "digits_l2t_dln")


@gin.configurable(denylist=["extra_results"])
def train_eval(model_dir=DEFAULT_MODEL_DIR,
               task=classification.ClassificationTask,
               strategy=strategy_lib.get_strategy, extra_results=None):
  """Runs L2T-DLN on `task` in `model_dir`; returns the results dict."""
  distribution = strategy() if callable(strategy) else strategy
  task = task() if isinstance(task, type) else task
  tf.io.gfile.makedirs(model_dir)
  trainer = trainer_lib.Trainer(task, model_dir, distribution)
  # Written once everything is bound (after the Trainer read its bindings).
  with tf.io.gfile.GFile(os.path.join(model_dir, "operative_config.gin"),
                         "w") as f:
    f.write(gin.operative_config_str())
  results = trainer.run()
  path = export.export_dln(trainer.dln, os.path.join(model_dir, "dln_export"),
                           {"task": task.name})
  results.update(dln_export_path=os.path.abspath(path),
                 model_dir=os.path.abspath(model_dir), task=task.name)
  results.update(extra_results or {})
  with tf.io.gfile.GFile(os.path.join(model_dir, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  return results
