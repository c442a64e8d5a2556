r"""What a learned DLN asks of a fresh model's logits, against CE (issue 23).

  python tools/dln_logit_gradient.py --set=mnist1d \
      --dln=<run>/dln_export --dln=<other run>/dln_export

Why does a DLN taught on one student transfer (or not) as the loss of a
fresh model (`tools/reuse_dln.py`)? This reads the DLN's gradient with
respect to the logits z [B, C] where a fresh model meets it: a fresh MLP
(`reuse_dln.fresh_mlp`) is trained with cross-entropy (SGD, batch 25, the
same recipe as `reuse_dln.py`) and, at the epochs of `--epochs`, every
exported DLN and CE are differentiated at its logits on the whole training
split. Per example i, with g = dL/dz_i (per-example: the losses are means
over the batch, so B * the batch gradient):

* `norm_ratio`: mean_i |g_DLN| / mean_i |g_CE| (the DLN's step size in
  units of CE's at the same learning rate);
* `cosine`: mean_i cos(g_DLN, g_CE) (1: CE's direction);
* `improper`: the fraction of examples whose descent step -g does not raise
  the margin z_y - z_k to the strongest wrong class k, i.e. g_k - g_y <= 0
  (CE: 0 for every example, since g_k - g_y = p_k + 1 - p_y > 0).

Prints one JSON object: per loss and epoch these three, and the fresh
model's training accuracy at that epoch.
"""

import keras
import numpy as np
import tensorflow as tf

from l2t_tf import strict_json
from l2t_tf.data import benchmark_sets
from l2t_tf.experiments import reuse_dln


def per_example_gradients(loss, y, logits):
  """[B, C] float64 dL_i/dz_i of a mean-over-batch loss at logits [B, C]."""
  z = tf.constant(logits, tf.float32)
  with tf.GradientTape() as tape:
    tape.watch(z)
    value = loss(tf.constant(y), z)
  return tape.gradient(value, z).numpy().astype(np.float64) * len(y)


def compare(g, g_ce, y, logits):
  """norm_ratio, cosine and improper of per-example gradients g vs CE's."""
  norms, ce_norms = np.linalg.norm(g, axis=1), np.linalg.norm(g_ce, axis=1)
  cosine = np.sum(g * g_ce, 1) / np.maximum(norms * ce_norms, 1e-30)
  rows = np.arange(len(y))
  wrong = logits.copy()
  wrong[rows, y] = -np.inf
  k = np.argmax(wrong, 1)
  return {"norm_ratio": float(norms.mean() / ce_norms.mean()),
          "cosine": float(cosine.mean()),
          "improper": float(np.mean(g[rows, k] - g[rows, y] <= 0))}


def main(argv=None):
  parser = reuse_dln.dln_parser(__doc__.split("\n")[0])
  parser.add_argument("--epochs", default="0,1,3,10,30",
                      help="CE epochs of the fresh model at which to compare")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--learning_rate", type=float, default=0.1)
  args = parser.parse_args(argv)
  epochs = sorted({int(e) for e in args.epochs.split(",")})
  x, y, _, _ = benchmark_sets.load(args.set)
  y = y.astype(np.int32)
  ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  losses = reuse_dln.load_dlns(args.dln)
  model = reuse_dln.fresh_mlp(args.seed, x.shape[1:], int(y.max()) + 1)
  model.compile(optimizer=keras.optimizers.SGD(args.learning_rate), loss=ce)
  keras.utils.set_random_seed(args.seed)
  out, done = {p: {} for p in args.dln}, 0
  accuracy = {}
  for epoch in epochs:
    if epoch > done:
      model.fit(x, y, batch_size=25, epochs=epoch - done, shuffle=True,
                verbose=0)
      done = epoch
    logits = model.predict(x, batch_size=500, verbose=0).astype(np.float64)
    accuracy[epoch] = float(np.mean(np.argmax(logits, 1) == y))
    g_ce = per_example_gradients(ce, y, logits)
    for path, loss in losses.items():
      out[path][epoch] = compare(per_example_gradients(loss, y, logits),
                                 g_ce, y, logits)
  print(strict_json.dumps({"per_dln": out, "train_accuracy": accuracy,
                           "set": args.set, "seed": args.seed,
                           "learning_rate": args.learning_rate}, indent=1))


if __name__ == "__main__":
  main()
