r"""Plots the per-round teaching diagnostics of runs (issue 12).

  python tools/plot_teaching.py \
      --run="paper=runs/digits_teaching_paper_seeds/seed_0" \
      --run="default=runs/digits_teaching_all_seeds/seed_0" \
      --output=docs/teaching_diagnostics_digits.png

Reads each run's history.json (written by the Trainer) and draws, over the
teacher rounds: cos(DLN step, -de_1/dphi) (> 0: the teacher descends), the
fraction of rounds whose update lowered e_2 below e_1 and the fraction kept
(running means over `--window` rounds), and |phi - phi_init| / |phi_init|.
"""
import argparse
import json
import os

import numpy as np

PANELS = (("teacher_cosine", "cos(DLN step, -∇ϕ e₁)"),
          ("update_helped", "fraction of updates with e₂ < e₁"),
          ("update_accepted", "fraction of updates kept"),
          ("dln_relative_change", "|ϕ - ϕ_init| / |ϕ_init|"))


def load_rounds(model_dir):
  """The per-round diagnostics list of a run directory."""
  path = os.path.join(model_dir, "history.json")
  if not os.path.exists(path):
    raise SystemExit(f"error: {path} not found; run `python -m l2t_tf.main` "
                     f"with train_eval.model_dir = '{model_dir}' first.")
  with open(path) as f:
    rounds = json.load(f).get("rounds", [])
  if not rounds:
    raise SystemExit(f"error: {path} has no per-round diagnostics (a run "
                     f"made before they were recorded).")
  return rounds


def running_mean(values, window):
  values = np.asarray(values, float)
  kernel = np.ones(min(window, len(values))) / min(window, len(values))
  return np.convolve(values, kernel, mode="valid")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", action="append", required=True,
                      help="label=model_dir")
  parser.add_argument("--window", type=int, default=25)
  parser.add_argument("--output", required=True, help="PNG path")
  args = parser.parse_args(argv)
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.2),
                           dpi=90)
  for spec in args.run:
    label, _, model_dir = spec.partition("=")
    rounds = load_rounds(model_dir)
    for ax, (key, title) in zip(axes, PANELS):
      values = [r[key] for r in rounds if key in r]
      if not values:
        continue
      smooth = (values if key == "dln_relative_change" else
                running_mean(values, args.window))
      ax.plot(np.arange(len(smooth)) + 1, smooth, label=label)
      ax.set_title(title, fontsize=9)
      ax.set_xlabel("teacher round")
  axes[0].axhline(0.0, color="gray", lw=0.5)
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(args.output)
  print(args.output)


if __name__ == "__main__":
  main()
