"""Large-margin softmax (L-Softmax): a classifier head plus its loss.

W. Liu, Y. Wen, Z. Yu, M. Yang, "Large-Margin Softmax Loss for Convolutional
Neural Networks", ICML 2016. For features x and the last fully connected
layer W (no bias), z_j = ||W_j|| ||x|| cos(theta_j). L-Softmax replaces the
target logit z_y by ||W_y|| ||x|| psi(theta_y) with (paper Sec. 3; its
Eq. 6-7 as we recall the numbering, not re-checked offline)

    psi(theta) = (-1)^k cos(m theta) - 2k,  theta in [k pi/m, (k+1) pi/m],
    cos(m theta) = sum_n (-1)^n C(m, 2n) cos^(m-2n)(theta) (1-cos^2(theta))^n,

so no arccos is needed: k counts the thresholds cos(j pi/m), j = 1..m-1, that
cos(theta) lies at or below (piecewise constant, no gradient); psi is C^1.
Training anneals from softmax to L-Softmax (the paper's optimisation section):

    f_y = ||W_y|| ||x|| (lambda cos(theta_y) + psi(theta_y)) / (1 + lambda),
    lambda = max(base * (1 + gamma * t)^(-power), lambda_min),  t = 1, 2, ...

the schedule of the authors' Caffe layer (its README example: base 1000,
gamma 2.5e-5, power 35, lambda_min 0, m = 4; our defaults). The other
logits z_j, j != y, are unchanged; the loss is softmax cross-entropy.

How it fits the engine (our design). The student is called as `student(x)`
and functionally as `student.stateless_call(trainable, non_trainable, x,
training=True)`; labels never enter it. So `LargeMarginHead`:

* at inference (`training` False/None) returns plain logits W^T x [B, C]:
  evaluation, the validation error and `check_labels` see a normal
  classifier (Liu et al. also classify with W^T x at test time);
* in training returns a dict {"logits": W^T x, "margin_logits": f} where
  margin_logits[:, j] is f_j computed *as if j were the target* (for every
  class; psi needs no label). `large_margin_softmax_loss(y, outputs)` then
  takes column y from margin_logits and the rest from logits: the loss is
  stateless and label-aware, the head owns m and the lambda schedule.
* the annealing step t is a non-trainable weight of the head, advanced on
  each training call, so it is carried through `stateless_call` and written
  back exactly like BatchNorm statistics, and checkpointed with the student.

Limits: the training outputs are a dict, so the DLN cannot consume this
student (use it with `Trainer.method = 'fixed_loss'`); `as_logits` extracts the
logits from either form. `wrap_student` turns any functional student whose
last layer is a Dense into this form (the Dense bias is dropped).
"""
import math

import gin
import keras
import tensorflow as tf

from l2t_tf import errors
from l2t_tf.students import digits_cnn


def cos_multiple_angle(cos_theta, margin):
  """cos(m theta) as the polynomial of cos(theta) of Eq. 7 (m a Python int)."""
  sin_sq = 1. - tf.square(cos_theta)
  return tf.add_n([(-1.) ** n * math.comb(margin, 2 * n)
                   * cos_theta ** (margin - 2 * n) * sin_sq ** n
                   for n in range(margin // 2 + 1)])


def psi(cos_theta, margin):
  """psi(theta) = (-1)^k cos(m theta) - 2k (Eq. 6) from cos(theta), [-1, 1]."""
  k = tf.zeros_like(cos_theta)
  for j in range(1, margin):
    k += tf.cast(cos_theta <= math.cos(j * math.pi / margin), cos_theta.dtype)
  k = tf.stop_gradient(k)
  sign = 1. - 2. * tf.math.floormod(k, 2.)
  return sign * cos_multiple_angle(cos_theta, margin) - 2. * k


def margin_logits(features, kernel, margin, lam, eps=1e-12):
  """f_j for every class j as if it were the target: [B, C].

  Args:
    features: x, float [B, D].
    kernel: W, float [D, C].
    margin: m, a Python int >= 1.
    lam: lambda >= 0, scalar.
    eps: added to ||W_j||^2 ||x||^2 under the square root (zero features).

  Returns:
    (logits W^T x, margin logits (lam z + n psi) / (1 + lam)), both [B, C],
    with n = ||W_j|| ||x||. margin = 1 or lam -> inf give margin logits = z.
  """
  logits = tf.matmul(features, kernel)
  norms = tf.sqrt(tf.reduce_sum(tf.square(features), -1, keepdims=True)
                  * tf.reduce_sum(tf.square(kernel), 0, keepdims=True) + eps)
  lam = tf.cast(lam, logits.dtype)
  target = norms * psi(logits / norms, margin)
  return logits, (lam * logits + target) / (1. + lam)


def lambda_schedule(step, base, gamma, power, lambda_min):
  """max(base * (1 + gamma * t)^(-power), lambda_min) (authors' Caffe layer)."""
  return tf.maximum(base * tf.pow(1. + gamma * step, -power), lambda_min)


class LargeMarginHead(keras.layers.Layer):
  """The L-Softmax fully connected layer (no bias). See the module docstring.

  Call on features [B, D]: logits [B, C] at inference; in training a dict
  {"logits", "margin_logits"} ([B, C] each) and the step t advances by one.
  """

  def __init__(self, units, margin=4, base=1000., gamma=2.5e-5, power=35.,
               lambda_min=0., kernel_initializer="glorot_uniform", **kwargs):
    super().__init__(**kwargs)
    if int(margin) != margin or margin < 1:
      raise errors.UserError(f"L-Softmax margin must be an integer >= 1, "
                             f"got {margin!r}.")
    self.units, self.margin = int(units), int(margin)
    self.base, self.gamma, self.power = base, gamma, power
    self.lambda_min = lambda_min
    self.kernel_initializer = keras.initializers.get(kernel_initializer)

  def build(self, input_shape):
    self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                  initializer=self.kernel_initializer,
                                  name="kernel")
    self.step = self.add_weight(shape=(), initializer="zeros",
                                trainable=False, name="step")

  def current_lambda(self, step=None):
    step = tf.convert_to_tensor(self.step) if step is None else step
    return lambda_schedule(step, self.base, self.gamma, self.power,
                           self.lambda_min)

  def call(self, features, training=None):
    kernel = tf.cast(tf.convert_to_tensor(self.kernel), features.dtype)
    if not training:
      return tf.matmul(features, kernel)
    step = tf.convert_to_tensor(self.step) + 1.
    self.step.assign(step)
    lam = tf.cast(self.current_lambda(step), features.dtype)
    logits, margin = margin_logits(features, kernel, self.margin, lam)
    return {"logits": logits, "margin_logits": margin}

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.units,)

  def get_config(self):
    return {**super().get_config(), "units": self.units,
            "margin": self.margin, "base": self.base, "gamma": self.gamma,
            "power": self.power, "lambda_min": self.lambda_min,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer)}


class LargeMarginClassifier(keras.Model):
  """Features model then LargeMarginHead: logits, or a dict in training."""

  def __init__(self, features, head, **kwargs):
    super().__init__(**kwargs)
    self.features, self.head = features, head

  def build(self, input_shape):
    if not self.head.built:
      self.head.build(self.features.output_shape)
    self.built = True

  def call(self, x, training=None):
    return self.head(self.features(x, training=training), training=training)

  @property
  def output_shape(self):
    return tuple(self.features.output_shape[:-1]) + (self.head.units,)

  def get_config(self):
    return {"name": self.name,
            "features": keras.saving.serialize_keras_object(self.features),
            "head": keras.saving.serialize_keras_object(self.head)}

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    features = keras.saving.deserialize_keras_object(config.pop("features"))
    head = keras.saving.deserialize_keras_object(
        config.pop("head"), custom_objects={"LargeMarginHead": LargeMarginHead})
    model = cls(features, head, **config)
    model.build(features.input_shape)
    return model


def wrap_student(student, margin=4, copy_kernel=True, **schedule):
  """Replaces the final Dense of a functional `student` by a LargeMarginHead.

  Args:
    student: a built functional keras.Model with one input whose last layer
      is a Dense producing the logits.
    margin: m.
    copy_kernel: start W from the Dense kernel (its bias is dropped), so the
      wrapped student starts next to the plain one.
    **schedule: base, gamma, power, lambda_min of the lambda schedule.

  Returns:
    A built LargeMarginClassifier (the features part shares the student's
    layers and weights).
  """
  dense = student.layers[-1]
  if not isinstance(dense, keras.layers.Dense) or len(student.outputs) != 1:
    raise errors.UserError(
        f"L-Softmax: the student '{student.name}' must end with a Dense layer "
        f"producing its logits; it ends with {type(dense).__name__}.")
  features = keras.Model(student.inputs, dense.input,
                         name=f"{student.name}_features")
  head = LargeMarginHead(dense.units, margin=margin, dtype=dense.dtype_policy,
                         name="large_margin_head", **schedule)
  model = LargeMarginClassifier(features, head, name=f"{student.name}_lsoftmax")
  model.build(features.input_shape)
  if copy_kernel:
    head.kernel.assign(dense.kernel)
  return model


@gin.configurable
def large_margin_student(input_shape, num_classes, dtype=None,
                         student=digits_cnn.digits_cnn, margin=4, base=1000.,
                         gamma=2.5e-5, power=35., lambda_min=0.):
  """Student factory; gin: `ClassificationTask.student = @large_margin_student`.

  `student` builds the plain student (Dense logits last); it is wrapped.
  """
  plain = student(input_shape=input_shape, num_classes=num_classes, dtype=dtype)
  return wrap_student(plain, margin=margin, base=base, gamma=gamma,
                      power=power, lambda_min=lambda_min)


def as_logits(outputs):
  """The plain logits from either output form of the head."""
  return outputs["logits"] if isinstance(outputs, dict) else outputs


@gin.configurable
def large_margin_softmax_loss(y_true, outputs):
  """L-Softmax loss: CE with the target logit replaced by f_y.

  Args:
    y_true: int labels [B].
    outputs: the training output dict of a LargeMarginHead.

  Returns:
    Scalar mean cross-entropy, in the logits' dtype.
  """
  if not isinstance(outputs, dict) or "margin_logits" not in outputs:
    raise errors.UserError(
        "large_margin_softmax_loss needs a student built with "
        "large_margin_student / wrap_student (called with training=True); "
        "bind ClassificationTask.student = @large_margin_student.")
  logits = outputs["logits"]
  labels = tf.reshape(tf.cast(y_true, tf.int32), tf.shape(logits)[:-1])
  target = tf.equal(tf.range(tf.shape(logits)[-1]), labels[..., None])
  mixed = tf.where(target, outputs["margin_logits"], logits)
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=mixed))
