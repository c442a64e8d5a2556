"""BatchNormalization whose second derivatives are exact.

Keras 3's BatchNormalization (TensorFlow backend) takes its training-mode
statistics from `tf.nn.moments`, which computes the variance as
mean((x - stop_gradient(mean(x)))^2). The stop_gradient leaves the *first*
derivative unchanged (d var / d mean = 0 at the batch mean), but not the
second: the gradient's own dependence on the mean is dropped, so a
Hessian-vector product through it is wrong. Differentiating through N > 1
SGD steps of a BatchNorm student (Eq. 4-6) then gives an inexact
hypergradient (measured: a float64 central difference disagreed already in
sign at N = 2, while N = 1 agreed to 1e-10).

`BatchNormalization` here is Keras' layer with the statistics computed
without stop_gradient, mean((x - mean(x))^2): the same values, exact in
every order. Every student of the package uses it; `exact_batch_norm()`
swaps it in while a third-party model (keras.applications' NASNet) is built.

Fused kernel (issue 13; off by default, `fused=True` or the gin binding
`fused_batch_norm.enabled = True`). In training mode on float32 NHWC
feature maps the forward pass runs TensorFlow's FusedBatchNormV3 (one kernel) and the
backward pass is the analytic batch-norm gradient written in plain ops
(`_fused_training_batch_norm`), with the statistics recomputed from x
without stop_gradient, so that it is differentiable, and exact, in every
order. TensorFlow's own gradient of the fused kernel is not exact in second
order: against a float64 reference, a small ResNet8's hypergradient through
it is more than 1 % off (`tests/students/test_batch_norm.py` asserts it).
Float64 (the finite-difference tests) and other ranks take the composite path.
Measured on the narrow ResNet8 (`tools/speed_vs_peer.py --levers=all`): the plain step is
a few per cent faster, the teaching round no faster, because the round's
cost is the backward pass and its derivative, which stay composite. Hence
off by default; it also changes float32 results in the last bits.

Synchronised statistics (issue 15; on by default, `sync=False` or the gin
binding `sync_batch_norm.enabled = False` for per-replica statistics). In
training mode inside a replica context of R > 1 replicas (MirroredStrategy,
MultiWorkerMirroredStrategy), the batch mean and variance are those of the
global batch, as on one device (`_global_moments`): one all-reduce (SUM) of
the per-replica sums of x and counts gives the mean, a second one of the
sums of (x - mean)^2 the variance; the mean keeps its gradient, as above.
The all-reduce (`_all_reduce_sum`) is differentiable in every order (its
gradient all-reduces the cotangent, again with a gradient), so replica r's tape
gives d(sum of all replicas' losses)/d(its inputs), and the MEAN of the
replicas' gradients (`hypergradient.student_gradient`) is the full-batch
gradient, Hessian-vector products and hypergradients included. The moving
statistics follow the global statistics, so replicas stay identical. With
one replica (or outside a replica context) nothing changes, bit for bit.
These all-reduces carry no per-op timeout (`_NO_TIMEOUT`), as every
collective of `strategy.multi_worker_strategy` (whatever timeout the
strategy has): a dead or stopped worker still stops the others, through
TensorFlow's coordination-service heartbeats (see `l2t_tf.strategy`).
"""
import contextlib

import gin
import keras
import tensorflow as tf


#: The name scope of the training-mode statistics (`_moments`), so that a
#: profile (tools/profile_round.py) finds their ops, and their derivatives'.
MOMENTS_SCOPE = "exact_moments"


@gin.configurable
def fused_batch_norm(enabled=False):
  """Gin knob: the default of `BatchNormalization(fused=None)`."""
  return bool(enabled)


@gin.configurable
def sync_batch_norm(enabled=True):
  """Gin knob: the default of `BatchNormalization(sync=None)`."""
  return bool(enabled)


def _sync_context():
  """The replica context if it spans several replicas, else None."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return None
  return ctx


#: The statistics' all-reduces carry no per-op timeout, even under a strategy
#: built with one: TensorFlow starts a watchdog thread per timed collective
#: op that sleeps for the whole timeout, i.e. timeout x collectives per second
#: threads, and a BatchNorm student issues ~8 all-reduces per BatchNorm per
#: hypergradient step (measured: at a 60 s timeout the digits workers ran out
#: of threads in round 12).
_NO_TIMEOUT = tf.distribute.experimental.CommunicationOptions(
    timeout_seconds=0)


def _all_reduce_sum(ctx, x):
  """SUM of x over the replicas of `ctx`, without a per-op timeout.

  The gradient is the same all-reduce of the cotangent (as for
  `ctx.all_reduce`, whose own gradient would restore the timeout), so it is
  differentiable in every order.

  Args:
    ctx: a `tf.distribute.ReplicaContext`.
    x: a tensor, the same shape on every replica.
  Returns:
    sum_r x_r, shaped like x.
  """
  @tf.custom_gradient
  def all_reduce(x):
    total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, x, options=_NO_TIMEOUT)
    return total, lambda cotangent: _all_reduce_sum(ctx, cotangent)
  return all_reduce(x)


def _global_moments(inputs, axes, ctx):
  """Mean and biased variance over the global batch; shapes of `axes` dropped.

  Two passes, each one all-reduce (SUM) over the replicas of `ctx`:
  mean = sum_r sum(x_r) / sum_r n_r, then
  variance = sum_r sum((x_r - mean)^2) / sum_r n_r, the single-device
  formula; n_r is replica r's count of reduced elements.

  Args:
    inputs: this replica's x, e.g. [B_r, H, W, C].
    axes: the reduced axes, e.g. [0, 1, 2].
    ctx: a `tf.distribute.ReplicaContext`.
  Returns:
    (mean, variance), e.g. [C] each, equal on every replica.
  """
  total = tf.reduce_sum(inputs, axis=axes, keepdims=True)
  count = tf.cast(tf.size(inputs) // tf.size(total), inputs.dtype)
  packed = _all_reduce_sum(ctx, tf.concat(
      [tf.reshape(total, [-1]), count[None]], axis=0))
  count = tf.stop_gradient(packed[-1])
  mean = tf.reshape(packed[:-1], total.shape) / count
  squares = tf.reduce_sum(tf.square(inputs - mean), axis=axes)
  variance = _all_reduce_sum(ctx, squares) / count
  return tf.squeeze(mean, axes), variance


@keras.saving.register_keras_serializable(package="l2t_tf")
class BatchNormalization(keras.layers.BatchNormalization):
  """`keras.layers.BatchNormalization` with second-order-exact moments.

  Args:
    fused: run FusedBatchNormV3 in training mode where it applies (float32,
      rank-4 inputs normalised over the last axis, no mask, renorm or
      synchronisation across replicas); see the module docstring. None:
      `fused_batch_norm()`.
    sync: in training mode with several replicas, normalise with the
      global batch's statistics (else each replica's own); see the module
      docstring. None: `sync_batch_norm()`. Keras' `synchronized=True`
      implies it (with these exact moments instead of Keras' own). A mask
      (Keras' masked moments) keeps per-replica statistics.
    **kwargs: `keras.layers.BatchNormalization`'s.
  """

  def __init__(self, fused=None, sync=None, **kwargs):
    super().__init__(**kwargs)
    self.fused = fused_batch_norm() if fused is None else bool(fused)
    self.sync = sync_batch_norm() if sync is None else bool(sync)

  def get_config(self):
    return dict(super().get_config(), fused=self.fused, sync=self.sync)

  def _sync_context(self):
    """The replica context to synchronise over, or None."""
    return _sync_context() if self.sync or self.synchronized else None

  def _fusable(self, inputs, training, mask):
    return (self.fused and training and self.trainable and mask is None
            and self._sync_context() is None and not self.renorm
            and inputs.shape.rank == 4 and self.axis in (3, -1)
            and inputs.dtype == tf.float32
            and self.compute_dtype == "float32")

  def _moments(self, inputs, mask):
    if mask is not None:
      return super()._moments(inputs, mask)
    axes = self._reduction_axes
    ctx = self._sync_context()
    with tf.name_scope(MOMENTS_SCOPE):  # A label for profiles only.
      if ctx is not None:
        return _global_moments(inputs, axes, ctx)
      mean = tf.reduce_mean(inputs, axis=axes, keepdims=True)
      variance = tf.reduce_mean(tf.square(inputs - mean), axis=axes)
      return tf.squeeze(mean, axes), variance

  def call(self, inputs, training=None, mask=None):
    if not self._fusable(inputs, training, mask):
      return super().call(inputs, training=training, mask=mask)
    channels = inputs.shape[-1]
    gamma = self.gamma.value if self.scale else tf.ones([channels])
    beta = self.beta.value if self.center else tf.zeros([channels])
    outputs, mean, variance = _fused_training_batch_norm(self.epsilon)(
        inputs, gamma, beta)
    for var, value in ((self.moving_mean, mean),
                       (self.moving_variance, variance)):
      var.assign(var * self.momentum + value * (1.0 - self.momentum))
    return outputs


def _fused_training_batch_norm(epsilon):
  """(x [B, H, W, C], gamma [C], beta [C]) -> (y, batch mean, variance).

  Forward: one FusedBatchNormV3 kernel. Backward: the analytic gradient
  dx = gamma / sigma * (dy - mean(dy) - x_hat * mean(dy * x_hat)),
  dgamma = sum(dy * x_hat), dbeta = sum(dy) (sums over B, H, W), in ops that
  are differentiable again. The statistics' own cotangents are dropped: the
  moving averages they feed carry no gradient (`student_gradient` stops it).
  The variance returned is the biased one, as Keras' layer keeps.
  """
  @tf.custom_gradient
  def batch_norm(x, gamma, beta):
    outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=gamma, offset=beta, mean=tf.zeros([0]),
        variance=tf.zeros([0]), epsilon=epsilon, data_format="NHWC",
        is_training=True)
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
    variance = variance * (count - 1.0) / count  # The kernel's is unbiased.

    def grad(d_outputs, d_mean, d_variance):
      del d_mean, d_variance
      axes = [0, 1, 2]
      centred = x - tf.reduce_mean(x, axes)
      inverse_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axes) +
                                  epsilon)
      x_hat = centred * inverse_std
      d_beta = tf.reduce_sum(d_outputs, axes)
      d_gamma = tf.reduce_sum(d_outputs * x_hat, axes)
      d_x = gamma * inverse_std * (d_outputs - (d_beta + x_hat * d_gamma) /
                                   count)
      return d_x, d_gamma, d_beta
    return (outputs, mean, variance), grad
  return batch_norm


@contextlib.contextmanager
def exact_batch_norm():
  """Builds models that name `keras.layers.BatchNormalization` with ours."""
  from keras.src import layers as src_layers  # pylint: disable=g-import-not-at-top
  originals = (keras.layers.BatchNormalization,
               src_layers.BatchNormalization)
  keras.layers.BatchNormalization = BatchNormalization
  src_layers.BatchNormalization = BatchNormalization
  try:
    yield
  finally:
    keras.layers.BatchNormalization, src_layers.BatchNormalization = originals
