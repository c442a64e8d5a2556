r"""Why ALA and the adaptive robust loss trail CE after tuning (issue 16).

  python tools/baseline_diagnostics.py            # both, seeds 0-1, JSON
  python tools/baseline_diagnostics.py --seeds=5 --output=docs/x

Each variant is the method's digits gin file with one change, on the
protocol of `tools/tune_methods.py` (the same held-out split, so the same
data as the tuned table), at student learning rates the sweep tried:

* ALA with a frozen controller (`ALAControllerUpdater.step_size` = 1e-9, so
  Phi stays at the identity) against ALA as read: if the frozen loss does
  as well as CE, the controller's actions are what hurts.
* The adaptive robust loss with its scale floor raised from 0.01 to 0.25
  (`adaptive_robust_loss.scale_lo`) against ARLF as read: the NLL drives
  the scale c to its floor, where the student's gradient is ~1/c^alpha
  times larger than at c = 1.

It also reads, from each variant's final checkpoint, what the learned loss
parameters became: ALA's off-diagonal Phi (how many pairs reward the wrong
class) and ARLF's scale c and shape alpha per class. Prints (and with
--output writes) one JSON object with every variant's held-out and test
accuracy (mean over seeds) and those parameters.
"""
import argparse
import json
import os

import numpy as np
import tensorflow as tf

from l2t_tf import strict_json
from l2t_tf.experiments import tune_methods

LR = tune_methods.STUDENT_LR
ALA_LR = "ALAControllerUpdater.learning_rate"
# (name, method, gin file, setting, extra bindings).
VARIANTS = (
    ("ala", "ala", "digits_ala.gin", {LR: 0.1, ALA_LR: 1e-3}, ()),
    ("ala_frozen", "ala", "digits_ala.gin", {LR: 0.1, ALA_LR: 1e-3},
     ("ALAControllerUpdater.step_size = 1e-9",)),
    ("ala_lr0.01", "ala", "digits_ala.gin", {LR: 0.01, ALA_LR: 1e-3}, ()),
    ("ala_frozen_lr0.01", "ala", "digits_ala.gin", {LR: 0.01, ALA_LR: 1e-3},
     ("ALAControllerUpdater.step_size = 1e-9",)),
    ("arlf", "arlf", "digits_arlf.gin", {LR: 0.1}, ()),
    ("arlf_scale_floor_0.25", "arlf", "digits_arlf.gin", {LR: 0.1},
     ("adaptive_robust_loss.scale_lo = 0.25",)),
)


def loss_parameters(model_dir):
  """What the run's loss parameters became (final checkpoint), or {}."""
  path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  if path is None:
    return {}
  names = dict(tf.train.list_variables(path))
  found = {}
  phi = [n for n in names if n.startswith("dln/phi/")]
  if phi:
    value = tf.train.load_variable(path, phi[0])
    off = value[~np.eye(value.shape[0], dtype=bool)]
    # Actions move Phi_ij by +-step_size; "positive" means by at least half
    # an action of ALA's default 0.1 (a frozen Phi drifts by ~1e-9).
    found.update(phi_offdiagonal_positive=float(np.mean(off > 0.05)),
                 phi_offdiagonal_abs_mean=float(np.mean(np.abs(off))))
  latent = {k: [n for n in names if n.startswith(f"fixed_loss/{k}/")]
            for k in ("latent_scale", "latent_alpha")}
  if all(latent.values()):
    scale = tf.train.load_variable(path, latent["latent_scale"][0])
    alpha = tf.train.load_variable(path, latent["latent_alpha"][0])
    found.update(arlf_latent_scale=scale.tolist(),
                 arlf_latent_alpha=alpha.tolist())
  return found


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, default=2)
  parser.add_argument("--jobs", type=int, default=2)
  parser.add_argument("--runs_dir", default="runs/baseline_diagnostics")
  parser.add_argument("--tuned_runs_dir", default="runs/tuned",
                      help="tools/tune_methods.py's runs: the unchanged "
                      "variants are its runs (reused if finished)")
  parser.add_argument("--output", default=None,
                      help="also write <output>.json")
  args = parser.parse_args(argv)
  report = {}
  for name, method, gin_file, setting, extra in VARIANTS:
    runner = tune_methods.Runner(
        os.path.join(args.runs_dir, name) if extra else args.tuned_runs_dir,
        args.jobs, extra)
    runs = runner.run_all(method, gin_file, setting, range(args.seeds))
    finished = [r for r in runs if r is not None]
    report[name] = {
        "setting": setting, "bindings": list(extra),
        "failed": len(runs) - len(finished),
        "heldout_accuracy": tune_methods.score(runs),
        "test_accuracy": float(np.mean([r["test_accuracy"]
                                        for r in finished]))
                         if finished else None,
        "loss_parameters": [loss_parameters(runner.model_dir(
            method, setting, seed)) for seed in range(args.seeds)]}
  text = json.dumps(report, indent=1)
  if args.output:
    with open(args.output + ".json", "w") as f:
      strict_json.dump(report, f, indent=1)
  print(text)


if __name__ == "__main__":
  main()
