"""The learned loss as a surface (paper Figure 3).

For the pairwise DLN, the loss contributed by one (sample, wrong class) row
depends on the prediction for the true class and for the wrong class. Figure 3
of the paper plots it over that square at teacher epochs 0, 2, 5 and 10. The
DLN's weights are snapshotted at every teacher epoch (`save_snapshot`), and
`surface` evaluates a (restored) DLN on a grid.
"""
import io
import json
import os

import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import strict_json

SNAPSHOT_DIR = "dln_snapshots"


def surface(dln, points=41):
  """(p_true [P, P], p_wrong [P, P], loss [P, P]) on a grid over (0, 1)^2.

  The row features are built as `PairwiseDLN.rows` builds them from
  probabilities: [p_true, p_wrong, 1, 0] (sigmoid4) or [p_true, p_wrong]
  (softmax2); the value is the MLP output of that single row.
  """
  grid = np.linspace(0.0, 1.0, points)
  p_true, p_wrong = np.meshgrid(grid, grid, indexing="ij")
  rows = feature_rows(dln, tf.constant(p_true, dln.compute_dtype),
                      tf.constant(p_wrong, dln.compute_dtype))
  return p_true, p_wrong, dln.mlp(rows).numpy()


def feature_rows(dln, p_true, p_wrong):
  """DLN input rows [..., F] for predictions p_true, p_wrong (tensors [...])."""
  features = [p_true, p_wrong]
  if dln.input_mode == "sigmoid4":
    features += [tf.ones_like(p_true), tf.zeros_like(p_true)]
  return tf.stack(features, -1)


def properness(dln, points=41):
  """Fraction of the open square (0, 1)^2 where the DLN is a proper loss.

  At a point (p_true, p_wrong) one (sample, wrong class) row's loss f is
  "proper" if descending it raises the prediction for the true class and
  lowers the one for the wrong class: df/dp_true < 0 and df/dp_wrong > 0.
  Evaluated on a `points` x `points` grid of cell centres; returns a float
  in [0, 1] (a loss such as CE scores 1).
  """
  grid = (np.arange(points) + 0.5) / points
  p_true, p_wrong = np.meshgrid(grid, grid, indexing="ij")
  p_true = tf.constant(p_true, dln.compute_dtype)
  p_wrong = tf.constant(p_wrong, dln.compute_dtype)
  with tf.GradientTape() as tape:
    tape.watch([p_true, p_wrong])
    loss = tf.reduce_sum(dln.mlp(feature_rows(dln, p_true, p_wrong)))
  d_true, d_wrong = tape.gradient(loss, [p_true, p_wrong])
  proper = tf.logical_and(d_true < 0, d_wrong > 0)
  return float(tf.reduce_mean(tf.cast(proper, tf.float64)))


def save_snapshot(dln, model_dir, epoch):
  """Writes the DLN's config and weights for teacher epoch `epoch`."""
  directory = os.path.join(model_dir, SNAPSHOT_DIR)
  tf.io.gfile.makedirs(directory)
  path = os.path.join(directory, f"epoch_{epoch:03d}.npz")
  buffer = io.BytesIO()
  np.savez(buffer, config=strict_json.dumps(dln.get_config(), default=str),
           **{f"w{i}": v.numpy() for i, v in enumerate(dln.variables)})
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(buffer.getvalue())
  return path


def load_snapshot(path):
  """A `PairwiseDLN` with the weights of a snapshot."""
  with tf.io.gfile.GFile(path, "rb") as f:
    data = np.load(io.BytesIO(f.read()))
    config = json.loads(str(data["config"]))
    weights = [data[f"w{i}"] for i in range(len(data.files) - 1)]
  keys = ("hidden_units", "input_mode", "negative_slope", "use_bias",
          "ignore_label")
  dln = dln_lib.PairwiseDLN(**{k: config[k] for k in keys if k in config},
                            dtype=config.get("dtype"))
  for var, value in zip(dln.variables, weights):
    var.assign(value)
  return dln


def snapshots(model_dir):
  """{epoch: path} of the snapshots in a model directory."""
  paths = tf.io.gfile.glob(os.path.join(model_dir, SNAPSHOT_DIR, "epoch_*.npz"))
  return {int(os.path.basename(p)[6:9]): p for p in sorted(paths)}


def contour_png(dln, title):
  """PNG bytes of a contour plot of `surface(dln)` (for TensorBoard)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  p_true, p_wrong, loss = surface(dln)
  fig, ax = plt.subplots(figsize=(4, 3.4), dpi=80)
  filled = ax.contourf(p_true, p_wrong, loss, levels=20, cmap="viridis")
  fig.colorbar(filled, ax=ax)
  ax.set_xlabel("prediction, true class")
  ax.set_ylabel("prediction, wrong class")
  ax.set_title(title)
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", bbox_inches="tight")
  plt.close(fig)
  return buffer.getvalue()
