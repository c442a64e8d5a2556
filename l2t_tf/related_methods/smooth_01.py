"""Smooth (sigmoid) approximation of the 0-1 loss, multi-class margin form.

Nguyen & Sanner, "Algorithms for Direct 0-1 Loss Optimization in Binary
Classification", ICML 2013. Their smooth (sigmoid) approximation of the 0-1
loss, the objective of their SLA algorithm, is for a binary margin
m = y * w^T x with y in {-1, +1}

    l_K(m) = 1 / (1 + exp(K * m)) = sigmoid(-K * m),

which tends to the 0-1 loss 1[m < 0] as the sharpness K grows (K -> inf).

Choices that are ours (the paper is binary and linear):

* Multi-class margin m = z_y - max_{j != y} z_j on the logits z; m > 0 iff the
  sample is classified correctly, so sigmoid(-K m) -> the multi-class 0-1
  loss as K -> inf. The max makes the loss non-differentiable where two wrong
  logits tie (a set of measure zero; TF gives the gradient to one of them).
* A fixed K (default 1). Nguyen & Sanner anneal K upwards (SLA, K <- r * K)
  for a linear model whose norm they keep fixed; for a deep student the
  scale of the logits plays the role of K and is learned with the weights,
  so we do not anneal. Bind `smooth_01_loss.sharpness` to change K.
* Mean over the batch.
"""
import gin
import tensorflow as tf


def multiclass_margin(y_true, logits):
  """m = z_y - max_{j != y} z_j.

  Args:
    y_true: int labels [...] (a trailing axis of size 1 is allowed).
    logits: float [..., C], C >= 2.

  Returns:
    Margins [...] in the dtype of `logits`.
  """
  num_classes = tf.shape(logits)[-1]
  labels = tf.reshape(tf.cast(y_true, tf.int32), tf.shape(logits)[:-1])
  onehot = tf.equal(tf.range(num_classes), labels[..., None])
  true_logit = tf.reduce_sum(
      tf.where(onehot, logits, tf.zeros_like(logits)), axis=-1)
  lowest = tf.fill(tf.shape(logits), logits.dtype.min)
  best_wrong = tf.reduce_max(tf.where(onehot, lowest, logits), axis=-1)
  return true_logit - best_wrong


@gin.configurable
def smooth_01_loss(y_true, logits, sharpness=1.0):
  """mean sigmoid(-K * m), m the multi-class margin (Nguyen & Sanner 2013).

  Args:
    y_true: int labels [B] (or [B, 1]).
    logits: float [B, C] logits, any float dtype.
    sharpness: K > 0; larger is closer to the 0-1 loss (and flatter away from
      the decision boundary).

  Returns:
    Scalar in the dtype of `logits`, in (0, 1). Equals 1/2 at m = 0; tends to
    0 for confident correct and to 1 for confident wrong predictions, where
    its gradient vanishes (the loss is robust to outliers by design).
  """
  margin = multiclass_margin(y_true, logits)
  return tf.reduce_mean(tf.sigmoid(-tf.cast(sharpness, logits.dtype) * margin))
