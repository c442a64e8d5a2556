"""Barron's general and adaptive robust loss (ARLF) for classification.

J. T. Barron, "A General and Adaptive Robust Loss Function", CVPR 2019.

General loss (paper Eq. 1), residual x, shape alpha, scale c > 0:

    rho(x, alpha, c) = b/alpha * (((x/c)^2/b + 1)^(alpha/2) - 1), b = |alpha-2|

with the limits the paper writes in closed form (its piecewise definition):
alpha = 2: 0.5 (x/c)^2 (L2); alpha = 0: log(0.5 (x/c)^2 + 1) (Cauchy);
alpha -> -inf: 1 - exp(-0.5 (x/c)^2) (Welsch); alpha -> +inf:
exp(0.5 (x/c)^2) - 1. As in the paper's code the power is evaluated as
expm1(alpha/2 * log1p((x/c)^2 / |alpha-2|)) for accuracy near alpha = 0
(as Barron's reference code does).

Adaptive loss (paper Sec. 2): alpha and c are learned by minimising the
negative log-likelihood of the density p(x | alpha, c) = exp(-rho(x, alpha,
c)) / (c Z(alpha)),

    nll(x, alpha, c) = rho(x, alpha, c) + log c + log Z(alpha),
    Z(alpha) = int_R exp(-rho(x, alpha, 1)) dx,    alpha >= 0,

(minimising rho alone over alpha and c is degenerate: c -> inf). The paper
approximates log Z with a precomputed spline; we integrate numerically
instead (Gauss-Legendre on x = tan(pi u / 2), `_QUADRATURE_POINTS` nodes), so
log Z and its alpha-derivative are exact derivatives of one smooth formula.
Checks: Z(2) = sqrt(2 pi), Z(0) = pi sqrt(2), Z(1) = 2 e K_1(1).
Parameterisation as the paper's code: alpha = lo + (hi - lo) sigmoid(a),
c = scale_lo + softplus(s), with (a, s) the trainable latents.

Choices that are ours (Barron does not treat classification, and the
L2T-DLN paper does not say how it applied ARLF):

* Residual x = softmax(z) - onehot(y), [B, C], loss = mean over the batch
  of the sum over classes of nll. One (alpha, c) per class (`per_class=True`,
  Barron's per-dimension adaptivity) or one shared pair.
* scale_lo = 1e-2 (Barron's default is 1e-5): probability residuals go to 0
  as the student fits, which drives c to its floor, and the student gradient
  grows like 1/c^2; 1e-2 keeps SGD at lr 0.1 stable.
* alpha in (0.001, 1.999), init 1 (Barron's defaults); alpha >= 0 is
  required because Z(alpha) diverges for alpha < 0.

Measured (issue 16, `tools/baseline_diagnostics.py`, digits, lr 0.1):
as read, c ends at the floor 0.01 for every class. The NLL sharpens the
density as the residuals shrink, and the student's gradient grows like
1/c^alpha. Test accuracy was 87.50 %, and one of five seeds collapsed to
chance. With scale_lo = 0.25 the same loss reaches 99.18 %. Classification's
probability residuals are not Barron's regression residuals: a floor near
the residuals' scale is needed.
"""
import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import errors

_QUADRATURE_POINTS = 256


def rho(x, alpha, scale):
  """Barron's general loss rho(x, alpha, c) (Eq. 1 and its limits).

  Args:
    x: float residuals, any shape.
    alpha: shape parameter broadcastable to x; may be 0, 2, -inf or +inf
      (closed forms are used there).
    scale: c > 0, broadcastable to x.

  Returns:
    rho, same shape and dtype as x; >= 0, zero at x = 0. Gradients with
    respect to x, alpha and c are finite everywhere (edges pick their own
    closed form; the other branches use safe stand-in values).
  """
  alpha = tf.cast(alpha, x.dtype) + tf.zeros_like(x)
  sq = tf.square(x / tf.cast(scale, x.dtype))
  is_two, is_zero = tf.equal(alpha, 2.), tf.equal(alpha, 0.)
  is_neg_inf, is_pos_inf = tf.equal(alpha, -np.inf), tf.equal(alpha, np.inf)
  edge = is_two | is_zero | is_neg_inf | is_pos_inf
  safe_alpha = tf.where(edge, tf.ones_like(alpha), alpha)
  b = tf.abs(safe_alpha - 2.)
  general = b / safe_alpha * tf.math.expm1(
      0.5 * safe_alpha * tf.math.log1p(sq / b))
  pos_inf = tf.math.expm1(0.5 * tf.where(is_pos_inf, sq, tf.zeros_like(sq)))
  out = tf.where(is_two, 0.5 * sq, general)
  out = tf.where(is_zero, tf.math.log1p(0.5 * sq), out)
  out = tf.where(is_neg_inf, -tf.math.expm1(-0.5 * sq), out)
  return tf.where(is_pos_inf, pos_inf, out)


def _quadrature(dtype):
  """Nodes x_i and log-weights of int_0^inf f(x) dx = sum w_i f(x_i)."""
  u, w = np.polynomial.legendre.leggauss(_QUADRATURE_POINTS)
  u, w = (u + 1.) / 2., w / 2.
  x = np.tan(np.pi * u / 2.)
  log_w = np.log(w * np.pi / 2.) - 2. * np.log(np.cos(np.pi * u / 2.))
  return tf.constant(x, dtype), tf.constant(log_w, dtype)


def log_partition(alpha):
  """log Z(alpha), Z = int exp(-rho(x, alpha, 1)) dx, for alpha >= 0.

  Args:
    alpha: float tensor, any shape, values in [0, inf) (finite).

  Returns:
    log Z, same shape and dtype; differentiable in alpha. Accuracy (float64,
    against 4096 nodes): ~1e-14 at alpha = 0, 1, 2 (closed forms), ~1e-10 for
    alpha >= 0.1, ~1e-6 absolute for alpha in [0.001, 0.05] (heavy tails, where
    the quadrature converges slowly).
  """
  alpha = tf.convert_to_tensor(alpha)
  nodes, log_weights = _quadrature(alpha.dtype)
  r = rho(nodes, alpha[..., None], tf.ones([], alpha.dtype))
  return np.log(2.) + tf.reduce_logsumexp(log_weights - r, axis=-1)


def nll(x, alpha, scale):
  """Negative log-likelihood rho + log c + log Z(alpha) (paper Sec. 2).

  Shapes as `rho`; alpha must lie in [0, inf).
  """
  alpha = tf.cast(alpha, x.dtype)
  scale = tf.cast(scale, x.dtype)
  return rho(x, alpha, scale) + tf.math.log(scale) + log_partition(
      alpha + tf.zeros_like(scale))


def probability_residual(y_true, logits):
  """softmax(z) - onehot(y): [B, C] from labels [B] and logits [B, C]."""
  labels = tf.reshape(tf.cast(y_true, tf.int32), tf.shape(logits)[:-1])
  onehot = tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)
  return tf.nn.softmax(logits, axis=-1) - onehot


@gin.configurable
def general_robust_loss(y_true, logits, alpha=1.0, scale=0.5):
  """Fixed-shape rho on the probability residual: mean_B sum_C rho.

  For a non-adaptive ARLF (bind alpha, scale). Scalar in the logits dtype.
  """
  x = probability_residual(y_true, logits)
  return tf.reduce_mean(tf.reduce_sum(rho(x, alpha, scale), axis=-1))


def _inverse_softplus(y):
  return float(np.log(np.expm1(y)))


class AdaptiveRobustLoss(keras.layers.Layer):
  """Barron's adaptive loss with learned alpha and c (the ARLF baseline).

  Call `loss(y_true, logits)`: labels int [B], logits [B, C] ->
  mean_B sum_C nll(softmax(z) - onehot(y), alpha, c), a scalar in the
  logits' dtype (can be negative: it is a negative log-density).
  Trainable variables: `latent_alpha`, `latent_scale`, each [C] if
  `per_class` else []. They must be optimised together with the student
  (the trainer has to include `loss.trainable_variables` in its step, or use
  `loss.stateless_call`); otherwise alpha and c stay at their init.
  """

  def __init__(self, per_class=True, alpha_lo=0.001, alpha_hi=1.999,
               alpha_init=None, scale_lo=1e-2, scale_init=1.0, **kwargs):
    super().__init__(**kwargs)
    if not 0. <= alpha_lo < alpha_hi:
      raise errors.UserError(f"AdaptiveRobustLoss needs 0 <= alpha_lo < "
                             f"alpha_hi, got {alpha_lo}, {alpha_hi}.")
    if alpha_init is None:
      alpha_init = (alpha_lo + alpha_hi) / 2.
    if not alpha_lo < alpha_init < alpha_hi or not scale_init > scale_lo > 0:
      raise errors.UserError("AdaptiveRobustLoss: need alpha_lo < alpha_init < "
                             "alpha_hi and scale_init > scale_lo > 0.")
    self.per_class, self.alpha_lo, self.alpha_hi = per_class, alpha_lo, alpha_hi
    self.scale_lo = scale_lo
    frac = (alpha_init - alpha_lo) / (alpha_hi - alpha_lo)
    self._alpha_latent_init = float(np.log(frac / (1. - frac)))
    self._scale_latent_init = _inverse_softplus(scale_init - scale_lo)

  def build(self, y_true_shape, logits_shape):
    shape = (logits_shape[-1],) if self.per_class else ()
    self.latent_alpha = self.add_weight(
        shape=shape, name="latent_alpha",
        initializer=keras.initializers.Constant(self._alpha_latent_init))
    self.latent_scale = self.add_weight(
        shape=shape, name="latent_scale",
        initializer=keras.initializers.Constant(self._scale_latent_init))

  def alpha(self):
    """alpha = lo + (hi - lo) * sigmoid(latent_alpha)."""
    return self.alpha_lo + (self.alpha_hi - self.alpha_lo) * tf.sigmoid(
        tf.convert_to_tensor(self.latent_alpha))

  def scale(self):
    """c = scale_lo + softplus(latent_scale)."""
    return self.scale_lo + tf.nn.softplus(
        tf.convert_to_tensor(self.latent_scale))

  def call(self, y_true, logits):
    x = probability_residual(y_true, logits)
    return tf.reduce_mean(tf.reduce_sum(
        nll(x, self.alpha(), self.scale()), axis=-1))


@gin.configurable
def adaptive_robust_loss(per_class=True, alpha_lo=0.001, alpha_hi=1.999,
                         alpha_init=None, scale_lo=1e-2, scale_init=1.0,
                         dtype=None):
  """The ARLF layer; gin: `ClassificationTask.fixed_loss =
  @adaptive_robust_loss()` (called: it owns variables)."""
  return AdaptiveRobustLoss(per_class=per_class, alpha_lo=alpha_lo,
                            alpha_hi=alpha_hi, alpha_init=alpha_init,
                            scale_lo=scale_lo, scale_init=scale_init,
                            dtype=dtype, name="adaptive_robust_loss")
