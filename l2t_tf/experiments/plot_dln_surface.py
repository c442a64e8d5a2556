r"""Draws the paper's Figure 3: the learned DLN loss surface per teacher epoch.

  python tools/plot_dln_surface.py --model_dir=runs/digits_l2t_dln \
      --epochs=0,2,5,10 --output_prefix=docs/figure3_digits

Reads the DLN snapshots a run writes at every teacher epoch
(`<model_dir>/dln_snapshots/epoch_XXX.npz`) and writes two PNGs: 3-D surfaces
(`<prefix>_surface.png`) and contours (`<prefix>_contour.png`) of the loss of
one (sample, wrong class) row over (prediction for the true class,
prediction for a wrong class), one panel per epoch.
"""
import argparse
import os

import matplotlib
matplotlib.use("Agg")
from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

from l2t_tf import loss_surface  # pylint: disable=g-import-not-at-top


def _panels(model_dir, epochs):
  available = loss_surface.snapshots(model_dir)
  missing = [e for e in epochs if e not in available]
  if missing:
    raise SystemExit(f"No DLN snapshot for epochs {missing} in {model_dir}/"
                     f"{loss_surface.SNAPSHOT_DIR} (have {sorted(available)}).")
  return [(e, loss_surface.surface(loss_surface.load_snapshot(available[e])))
          for e in epochs]


def plot(panels, title, surface_path, contour_path):
  """Writes the 3-D surface and the contour figures."""
  fig = plt.figure(figsize=(4.2 * len(panels), 4))
  for i, (epoch, (p_true, p_wrong, loss)) in enumerate(panels):
    ax = fig.add_subplot(1, len(panels), i + 1, projection="3d")
    ax.plot_surface(p_true, p_wrong, loss, cmap="viridis")
    ax.set_xlabel("p(true class)")
    ax.set_ylabel("p(wrong class)")
    ax.set_title(f"teacher epoch {epoch}")
  fig.suptitle(title)
  fig.savefig(surface_path, dpi=90, bbox_inches="tight")
  plt.close(fig)
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8),
                           layout="constrained")
  for ax, (epoch, (p_true, p_wrong, loss)) in zip(axes, panels):
    filled = ax.contourf(p_true, p_wrong, loss, levels=20, cmap="viridis")
    fig.colorbar(filled, ax=ax)
    ax.set_xlabel("p(true class)")
    ax.set_ylabel("p(wrong class)")
    ax.set_title(f"teacher epoch {epoch}")
  fig.suptitle(title)
  fig.savefig(contour_path, dpi=90, bbox_inches="tight")
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--model_dir", required=True)
  parser.add_argument("--epochs", default="0,2,5,10")
  parser.add_argument("--output_prefix", default=None,
                      help="default: <model_dir>/figure3")
  parser.add_argument("--title", default="Learned DLN loss")
  args = parser.parse_args()
  epochs = [int(e) for e in args.epochs.split(",")]
  prefix = args.output_prefix or os.path.join(args.model_dir, "figure3")
  plot(_panels(args.model_dir, epochs), args.title,
       f"{prefix}_surface.png", f"{prefix}_contour.png")
  print(f"{prefix}_surface.png\n{prefix}_contour.png")


if __name__ == "__main__":
  main()
