"""Stochastic loss function (SLF), as far as its paper could be read here.

Q. Liu, J. Lai, "Stochastic Loss Function", AAAI 2020.

What we could establish: only the abstract and the caption of the paper's
Figure 1 (via a search index; the full text, its equations and any code were
not reachable offline). They say: a group of loss functions is predefined; a
decision network h(.; v) selects among them with Gumbel-Softmax, generalised
to a "multiple Gumbel-Softmax" that selects and combines several losses at
once; the loss functions are parameterised by binary codes; the SLF loss
combines the selected losses; network weights w and loss parameters v are
learned jointly "in the same round of back-propagation".

So this module is OUR READING, not a transcription of the paper's equations:

    s_m = straight_through(softmax((v_m + g_m) / tau)),  g_m ~ Gumbel(0, 1),
    L(y, z) = sum_k w_k * mean_b l_k(y_b, z_b),   w_k = (1/M) sum_m s_mk,

with v [M, K] free logits (the "decision network" reduced to a table: we do
not know its input), M selections (`num_selections`, the multiple
Gumbel-Softmax), s_m one-hot in the forward pass (the binary code of which
loss each selection picks) and the softmax's gradient in the backward pass
(straight-through, Jang et al. 2017), temperature tau. The default group
{cross-entropy, squared error on probabilities, multi-class hinge, focal
(gamma = 2)} is our choice. v is trained on the same loss as the student
(the "same round of back-propagation"); the trainer must include
`loss.trainable_variables` in the student's step or v stays at its init
(uniform selection). Name it "SLF (our reading)" in any table.
"""
import gin
import keras
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.related_methods import smooth_01


def _onehot(y_true, logits):
  labels = tf.reshape(tf.cast(y_true, tf.int32), tf.shape(logits)[:-1])
  return tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)


def cross_entropy(y_true, logits):
  """Per-sample softmax CE [B]."""
  return -tf.reduce_sum(_onehot(y_true, logits)
                        * tf.nn.log_softmax(logits, -1), -1)


def squared_error(y_true, logits):
  """Per-sample sum_c (p_c - onehot_c)^2 on softmax probabilities [B]."""
  return tf.reduce_sum(tf.square(tf.nn.softmax(logits, -1)
                                 - _onehot(y_true, logits)), -1)


def hinge(y_true, logits):
  """Per-sample multi-class hinge max(0, 1 - m) (Crammer-Singer) [B]."""
  return tf.nn.relu(1. - smooth_01.multiclass_margin(y_true, logits))


def focal(y_true, logits, gamma=2.):
  """Per-sample focal loss -(1 - p_y)^gamma log p_y [B]."""
  log_p = tf.reduce_sum(_onehot(y_true, logits)
                        * tf.nn.log_softmax(logits, -1), -1)
  return -tf.pow(1. - tf.exp(log_p), gamma) * log_p


BASE_LOSSES = {"cross_entropy": cross_entropy, "squared_error": squared_error,
               "hinge": hinge, "focal": focal}


def selection_weights(selection_logits, gumbel, temperature, hard=True):
  """w_k = mean_m s_mk from v [M, K] and Gumbel noise [M, K] (or None).

  hard=True: s_m is one-hot in value, softmax in gradient (straight-through).
  Returns [K], summing to 1, in the dtype of v.
  """
  scores = selection_logits if gumbel is None else selection_logits + gumbel
  soft = tf.nn.softmax(scores / temperature, -1)
  if hard:
    onehot = tf.one_hot(tf.argmax(soft, -1), tf.shape(soft)[-1],
                        dtype=soft.dtype)
    soft = onehot + soft - tf.stop_gradient(soft)
  return tf.reduce_mean(soft, 0)


def stochastic_loss(y_true, logits, weights, losses):
  """sum_k w_k mean_b l_k: labels [B], logits [B, C], weights [K] -> scalar."""
  values = tf.stack([tf.reduce_mean(BASE_LOSSES[name](y_true, logits))
                     for name in losses])
  return tf.reduce_sum(tf.cast(weights, logits.dtype) * values)


class StochasticLoss(keras.layers.Layer):
  """SLF (our reading): Gumbel-selected mixture of base losses; see module.

  Call `loss(y_true, logits, gumbel=None, training=True)`: labels int [B],
  logits [B, C] -> scalar. With training=True Gumbel noise [M, K] is drawn
  statelessly from (seed, the batch's labels) unless `gumbel` is given; with
  training=False the selection is argmax v (no noise).
  Trainable variable: `selection_logits` [M, K], zeros at init.
  """

  def __init__(self, losses=tuple(BASE_LOSSES), num_selections=2,
               temperature=1.0, hard=True, seed=None, **kwargs):
    super().__init__(**kwargs)
    unknown = [name for name in losses if name not in BASE_LOSSES]
    if unknown or not losses or num_selections < 1 or temperature <= 0:
      raise errors.UserError(
          f"StochasticLoss: losses must be a non-empty subset of "
          f"{sorted(BASE_LOSSES)} (unknown: {unknown}), num_selections >= 1 "
          f"and temperature > 0.")
    self.losses_names, self.num_selections = tuple(losses), num_selections
    self.temperature, self.hard = temperature, hard
    self.seed = 0 if seed is None else int(seed)

  def build(self, y_true_shape, logits_shape):
    self.selection_logits = self.add_weight(
        shape=(self.num_selections, len(self.losses_names)),
        initializer="zeros", name="selection_logits")

  def weights_for(self, gumbel=None, training=True, y_true=None):
    v = tf.convert_to_tensor(self.selection_logits)
    if training and gumbel is None:
      u = tf.random.stateless_uniform(
          tf.shape(v), self._noise_seed(y_true), minval=1e-20, maxval=1.,
          dtype=v.dtype)
      gumbel = -tf.math.log(-tf.math.log(u))
    if not training:
      gumbel = None
    return selection_weights(v, gumbel, self.temperature, self.hard)

  def _noise_seed(self, y_true):
    """[2] int seed: the layer's seed and a fingerprint of the batch's labels.

    The noise is a stateless function of the batch, fresh for every batch
    and the same when a run is repeated or resumed. (A seed generator's
    state would be rolled back after every functional student step, giving
    the same noise at every step.)
    """
    fingerprint = tf.zeros([], tf.int64)
    if y_true is not None:
      y = tf.reshape(tf.cast(y_true, tf.int64), [-1])
      positions = tf.range(1, tf.size(y, tf.int64) + 1, dtype=tf.int64)
      fingerprint = tf.reduce_sum((y + 1) * positions * 7919) % (2**31 - 1)
    return tf.stack([tf.constant(self.seed, tf.int64), fingerprint])

  def call(self, y_true, logits, gumbel=None, training=True):
    return stochastic_loss(y_true, logits,
                           self.weights_for(gumbel, training, y_true),
                           self.losses_names)


@gin.configurable
def stochastic_loss_function(losses=tuple(BASE_LOSSES), num_selections=2,
                             temperature=1.0, hard=True, seed=None,
                             dtype=None):
  """The SLF layer; gin: `ClassificationTask.fixed_loss =
  @stochastic_loss_function()` (called: it owns variables)."""
  return StochasticLoss(losses=losses, num_selections=num_selections,
                        temperature=temperature, hard=hard, seed=seed,
                        dtype=dtype, name="stochastic_loss")
