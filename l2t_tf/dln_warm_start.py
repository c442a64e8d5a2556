"""DLN warm start (ours, beyond the paper): begin teaching from a proper loss.

The paper starts the DLN from a Kaiming-normal draw. Such a random MLP is a
harmful loss about half the time (issue 12: over 50 draws 54 % push the
true-class logit down at typical starting logits), and a student that has
saturated its wrong-class sigmoids early cannot be pulled back later. The
warm start fits the pairwise DLN, before the first round, to a proper target
loss on its input square, in seconds; the teacher then starts from a loss
that already teaches and adapts it.

Target `"bce"`: for one (sample, wrong class j) row with predictions
(a, b) = (p_true, p_j),

    f(a, b) = -log(a) - log(1 - b),                                 (W1)

so the DLN's mean over the B*C rows is (C-1)/C * (-log p_y) + 1/C *
sum_j -log(1 - p_j): a one-vs-rest cross-entropy in the DLN's own features
(sigmoids in the release's 4-feature input, softmax probabilities in the
2-feature one). The fit minimises the mean squared error of the MLP's row
output against (W1) on a grid of the square (clipped to [margin, 1 -
margin], where the target is finite), with Adam.

Target `"pairwise_logistic"` (issue 23): with z = logit(p) (the logits,
in `sigmoid4`),

    f(a, b) = log(1 + exp(z_j - z_y)),                              (W2)

a loss of logit differences only, as CE (which it bounds from below per
wrong class); its logit gradient at zero logits equals (W1)'s.

Scale (issue 23): at zero logits, in the release's `sigmoid4` input, the
gradient of (W1)'s mean over the C rows of a sample is exactly half of
cross-entropy's, for every C:

    d/dz_y = (C-1)/C * (sigmoid(0) - 1) = -(C-1)/(2C)   (CE: -(C-1)/C),
    d/dz_j = sigmoid(0) / C            =  1/(2C)        (CE:  1/C),

so a student that learns from the warm-started DLN starts as if its
learning rate were halved. `scale` multiplies the target; `scale=2` makes
the DLN's gradient equal to CE's at zero logits (`tests/test_dln_warm_start`
checks the closed form). docs/generalization.md measures the ratio through
training.

Edge: a bias-free `softmax2` DLN has no constant input, so its MLP is
positively homogeneous, f(k a, k b) = k f(a, b), and cannot represent (W1)
(relative RMSE ~0.55); give it `use_bias=True` to warm-start it. The
release's `sigmoid4` rows carry a constant 1 and fit to ~3 %.
"""
import gin
import numpy as np
import tensorflow as tf

from l2t_tf import errors
from l2t_tf import loss_surface

TARGETS = ("bce", "pairwise_logistic")


def target_loss(target, p_true, p_wrong, scale=1.0):
  """`scale` times the target row loss (W1) at p_true, p_wrong (tensors)."""
  if target not in TARGETS:
    raise errors.UserError(f"dln warm start target must be one of {TARGETS}, "
                           f"got {target!r}.")
  if target == "pairwise_logistic":  # softplus(z_j - z_y), (W2).
    odds = p_wrong * (1.0 - p_true) / ((1.0 - p_wrong) * p_true)
    return scale * tf.math.log1p(odds)
  return scale * (-tf.math.log(p_true) - tf.math.log(1.0 - p_wrong))


@gin.configurable(denylist=["dln"])
def warm_start(dln, target="bce", steps=1500, learning_rate=3e-3, points=33,
               margin=0.02, scale=1.0):
  """Fits the pairwise DLN `dln` to `target` in place; returns the fit.

  Args:
    dln: a `PairwiseDLN` (its variables may be mirrored: the fit runs on
      copies and assigns the result in cross-replica context).
    target: the proper target loss, "bce" (W1).
    steps, learning_rate: Adam steps on the mean squared error.
    points: grid points per axis of [margin, 1 - margin]^2.
    margin: keeps the target finite (|f| <= -2 log(margin)).
    scale: multiplies the target (2: CE's gradient at zero logits, above).
  Returns:
    dict(warm_start_rmse=root mean squared error of the fit relative to the
    target's standard deviation, warm_start_properness=`properness` after).
  """
  grid = np.linspace(margin, 1.0 - margin, int(points))
  a, b = np.meshgrid(grid, grid, indexing="ij")
  dtype = dln.compute_dtype
  a, b = tf.constant(a.ravel(), dtype), tf.constant(b.ravel(), dtype)
  rows = loss_surface.feature_rows(dln, a, b)
  goal = target_loss(target, a, b, scale)
  kernels = [tf.Variable(tf.convert_to_tensor(k)) for k in dln.kernels]
  biases = [tf.Variable(tf.convert_to_tensor(v)) for v in dln.biases]
  fitted = kernels + biases
  # Adam by hand on plain copies: a Keras optimizer would build its slots
  # as mirrored variables under a strategy scope.
  moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v)))
             for v in fitted]

  def error():
    out = dln.mlp(rows, kernels, biases)
    return tf.reduce_mean(tf.square(out - goal))

  @tf.function
  def fit():
    for t in tf.range(1, steps + 1):
      with tf.GradientTape() as tape:
        loss = error()
      grads = tape.gradient(loss, fitted)
      t = tf.cast(t, dtype)
      for var, grad, (m, v) in zip(fitted, grads, moments):
        m.assign(0.9 * m + 0.1 * grad)
        v.assign(0.999 * v + 0.001 * tf.square(grad))
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        var.assign_sub(learning_rate * m_hat / (tf.sqrt(v_hat) + 1e-8))
    return error()

  mse = fit()
  for var, value in zip(list(dln.kernels) + list(dln.biases), fitted):
    var.assign(tf.convert_to_tensor(value))
  rmse = float(tf.sqrt(mse) / tf.math.reduce_std(goal))
  return {"warm_start_rmse": rmse,
          "warm_start_properness": loss_surface.properness(dln)}
