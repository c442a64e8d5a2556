"""L2T-DLF: learning to teach with dynamic loss functions, on our engine.

L. Wu, F. Tian, Y. Xia, Y. Fan, T. Qin, J. Lai, T.-Y. Liu, "Learning to Teach
with Dynamic Loss Functions", NeurIPS 2018.

Sources. Beyond its abstract and introduction the paper's text was not
reachable offline, so its equations are not transcribed here. The loss form
and its initialisation come from the authors' public demo
(github.com/apeterswu/L2T_loss, `loss_lenet_light_dynamic.py`, MNIST/LeNet,
which says it is "little different to the paper, but the main spirit is
same"); the teacher's inputs from the paper's abstract and its reviews (the
student's state: training iteration, training loss, validation error) and
from the demo's "dynamic" variant (iteration and training-batch error).

What we followed:

* The loss with parameters Phi = {W [C, C], b [C]}:

      L_Phi(p, y) = -(1/B) sum_i sigma(y_i^T W log p_i + y_i^T b),
      p_i = softmax(z_i),

  y_i one-hot (the demo's `-mean(sigmoid([(log p)^T W + b]_y))`). The demo
  takes column y of W; we take row y, as the formula above reads (the same
  family with W transposed). W starts at the identity and b at zero, as in
  the demo, so the loss starts as -mean_i sigma(-CE_i), a monotone transform
  of cross-entropy; its gradient is CE's scaled per example by
  sigma'(log p_y) <= 1/4, which vanishes on badly misclassified examples.
* The teacher outputs the loss, Phi_t = mu_theta(s_t), from the student's
  state s_t, and learns by gradient descent on the validation error through
  reverse-mode differentiation of the student's SGD steps. Here with our
  engine: every teaching round computes g = de/dPhi at the current Phi
  through the stage-I student step(s) (`hypergradient.unroll`), then the
  teacher takes one Adam step on de/dtheta = (dmu_theta(s_prev)/dtheta)^T g,
  the vector-Jacobian product through the teacher at the state that produced
  the current Phi, and sets Phi <- mu_theta(s_t). The teacher thus learns
  online from one truncated unroll per round rather than from an unroll of
  a whole training episode per teacher update (the paper's outer loop).

Our choices (not from the paper or the demo):

* State features s_t, all scalars the round already computes (no extra
  passes): progress (rounds done / rounds planned, in [0, 1]), the mean
  stage-I training loss (the DLF loss itself, in [-1, 0]) and log(1 + e_1),
  e_1 the cross-entropy on the teacher's validation batch after stage I.
  Before the first round s = 0.
* mu_theta(s) = Phi_0 + output_scale * MLP(s): `hidden_units` tanh layers
  (default one of 32 units, Glorot-uniform kernels) and a linear output layer
  of C^2 + C units initialised at zero, so mu_theta(s) = Phi_0 = {I, 0} for
  every s at the start. Phi_0 is a fixed (non-trainable) weight. Because the
  output layer starts at zero, the first round trains only its bias, the
  second its kernel too, the hidden layer learns from the third round on.
* Adam with learning rate 1e-3 (the LSTM teacher's), output_scale 1.
* The validation error is the task's (cross-entropy); the demo uses a
  smoothed 0-1 error, 2 sigma(k (max_c p_c - p_y)) - 1. No cross-entropy
  pre-training of the student (the demo pre-trains before teaching).
* With N = 1 (gin_configs/digits_l2t_dlf.gin) a round is one
  student step with the hypergradient and one plain step, so Phi changes
  every 2 student steps.

Use with any classification experiment (Trainer.method stays 'l2t_dln'):

    import l2t_tf.related_methods.l2t_dlf
    ClassificationTask.dln = @dlf_loss
    Trainer.updater = @DLFTeacherUpdater
    Trainer.unroll_length = 1

Name it "L2T-DLF (our reading)" in any table.
"""
import math

import gin
import keras
import tensorflow as tf

from l2t_tf import checkpointing
from l2t_tf import checks
from l2t_tf import dln_updaters
from l2t_tf import mlp

#: Names of the state features, in the order of `state_features`.
STATE_FEATURES = ("progress", "train_loss", "log1p_validation_error")


class DLFLoss(keras.layers.Layer):
  """L_Phi(p, y) = -mean_i sigma(y_i^T W log softmax(z_i) + y_i^T b).

  Call `loss(y_true, logits)`: labels int [...] (a trailing axis of size 1
  is allowed), logits [..., C]; every leading position is an example.
  Returns a scalar in the layer's dtype. W [C, C] (`loss_matrix`, identity at
  init) and b [C] (`loss_bias`, zeros) are built on the first call from the
  logits' last dimension (or here, if `num_classes` is given).
  """

  def __init__(self, num_classes=None, **kwargs):
    super().__init__(**kwargs)
    if num_classes is not None:
      self.build(None, (None, int(num_classes)))
      self.built = True

  def build(self, y_true_shape, logits_shape):
    del y_true_shape
    num_classes = logits_shape[-1]
    if num_classes is None:
      raise ValueError("DLFLoss: the number of classes (last axis of the "
                       "logits) must be known when the loss is built.")
    self.num_classes = int(num_classes)
    self.loss_matrix = self.add_weight(
        shape=(self.num_classes, self.num_classes), initializer="identity",
        name="loss_matrix")
    self.loss_bias = self.add_weight(shape=(self.num_classes,),
                                     initializer="zeros", name="loss_bias")

  def scores(self, y_true, logits):
    """y_i^T W log p_i + y_i^T b per example: [M] for M = prod(leading)."""
    logits = tf.cast(logits, self.compute_dtype)
    num_classes = tf.shape(logits)[-1]
    log_p = tf.nn.log_softmax(tf.reshape(logits, [-1, num_classes]), -1)
    labels = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
    # y^T W and y^T b as products with one-hot rows (not gathers), so that
    # d/dW is a dense tensor like every other hypergradient.
    onehot = tf.one_hot(labels, num_classes, dtype=log_p.dtype)
    rows = tf.matmul(onehot, tf.cast(self.loss_matrix, log_p.dtype))  # W[y]
    bias = tf.linalg.matvec(onehot, tf.cast(self.loss_bias, log_p.dtype))
    return tf.reduce_sum(rows * log_p, -1) + bias

  def call(self, y_true, logits):
    return -tf.reduce_mean(tf.sigmoid(self.scores(y_true, logits)))

  def get_config(self):
    config = super().get_config()
    config.update(num_classes=getattr(self, "num_classes", None))
    return config


@gin.configurable
def dlf_loss(dtype=None):
  """Gin factory of `DLFLoss`: `ClassificationTask.dln = @dlf_loss`."""
  return DLFLoss(dtype=dtype, name="dlf_loss")


def state_features(observation, dtype):
  """s_t [3] from the round's observation (see STATE_FEATURES)."""
  get = lambda k: tf.cast(tf.reshape(observation[k], []), dtype)
  return tf.stack([get("progress"), get("train_loss"),
                   tf.math.log1p(get("validation_error"))])


class DLFTeacher(keras.layers.Layer):
  """mu_theta: state [F] -> flat Phi [P] = base + scale * MLP(state).

  `mlp.forward` with tanh hidden layers (Glorot-uniform kernels, zero
  biases) and a linear output layer initialised at zero. `base` [P] is a
  non-trainable weight.
  """

  def __init__(self, num_features, num_outputs, hidden_units=(32,),
               output_scale=1.0, **kwargs):
    super().__init__(**kwargs)
    self.hidden_units = tuple(int(u) for u in hidden_units)
    self.output_scale = float(output_scale)
    widths = (int(num_features),) + self.hidden_units + (int(num_outputs),)
    self.kernels, self.biases = mlp.create_weights(
        self.add_weight, widths,
        lambda i, last: "zeros" if last else "glorot_uniform",
        lambda i, last: "zeros")
    self.base = self.add_weight(shape=(int(num_outputs),), initializer="zeros",
                                name="base", trainable=False)
    self.built = True

  def call(self, state):
    x = tf.cast(state, self.compute_dtype)[None]
    x = mlp.forward(x, self.kernels, self.biases, tf.tanh)
    return tf.cast(self.base, x.dtype) + self.output_scale * x[0]


@gin.configurable
class DLFTeacherUpdater(dln_updaters.HypergradientUpdater):
  """L2T-DLF's teacher as a DLN updater: Phi = mu_theta(s_t); see the module.

  `apply(phi, g, observation)`, g = de/dPhi at the current Phi:
    1. theta <- Adam(theta, (dmu_theta(s_prev)/dtheta)^T g), s_prev the state
       that produced the current Phi (zeros before the first round);
    2. s = state_features(observation); Phi <- mu_theta(s); s_prev <- s.
  So Phi == mu_theta(s_prev) holds between rounds. Teacher weights are Keras
  weights (held by name, `teacher_weights`), s_prev is a variable of this module and the
  Adam slots live in `optimizer`: the trainer's checkpoint holds them all.
  Everything is created in `build` (inside the strategy scope); `apply` runs
  in cross-replica context on reduced hypergradients.
  """

  def __init__(self, optimizer="adam", learning_rate=1e-3, hidden_units=(32,),
               output_scale=1.0):
    super().__init__(name="dlf_teacher_updater")
    self.optimizer = dln_updaters.make_optimizer(optimizer, learning_rate,
                                                 "DLFTeacherUpdater")
    self.hidden_units = checks.integers("DLFTeacherUpdater.hidden_units",
                                        hidden_units)
    self.output_scale = checks.number("DLFTeacherUpdater.output_scale",
                                      output_scale, 0)
    self.teacher = None
    self.previous_state = None

  def build(self, dln_variables):
    dtype = tf.as_dtype(dln_variables[0].dtype)
    num = sum(math.prod(v.shape) for v in dln_variables)
    self.teacher = DLFTeacher(len(STATE_FEATURES), num, self.hidden_units,
                              self.output_scale, dtype=dtype.name,
                              name="dlf_teacher")
    self.teacher.base.assign(dln_updaters.flatten(
        [tf.convert_to_tensor(v) for v in dln_variables]))
    self.previous_state = tf.Variable(
        tf.zeros([len(STATE_FEATURES)], dtype), trainable=False,
        name="previous_state")
    self.optimizer.build(self.teacher.trainable_variables)
    self.teacher_weights = checkpointing.layer_variables(self.teacher)

  def teacher_gradient(self, hypergradients, state):
    """(dmu_theta(state)/dtheta)^T g: one VJP, g = flat de/dPhi as data."""
    variables = self.teacher.trainable_variables
    with tf.GradientTape() as tape:
      phi = self.teacher(state)
    cotangent = tf.cast(tf.stop_gradient(dln_updaters.flatten(hypergradients)),
                        phi.dtype)
    return tape.gradient(phi, variables, output_gradients=cotangent)

  def apply(self, dln_variables, hypergradients, observation=None):
    if observation is None:
      raise ValueError("DLFTeacherUpdater.apply needs the round's observation "
                       "(progress, train_loss, validation_error).")
    variables = self.teacher.trainable_variables
    grads = self.teacher_gradient(hypergradients,
                                  tf.convert_to_tensor(self.previous_state))
    # Explicit order: the VJP (which used theta and s_prev) is complete before
    # any write; without it a float32 run was seen, rarely, to use the
    # updated output kernel in the VJP's backward pass.
    with tf.control_dependencies(grads):
      self.optimizer.apply(grads, variables)
      state = state_features(observation, self.previous_state.dtype)
      phi = self.teacher(state)  # Read after Adam's writes (auto deps).
    old = dln_updaters.flatten([tf.convert_to_tensor(v)
                                for v in dln_variables])
    step_norm = tf.norm(tf.cast(phi, old.dtype) - old)
    with tf.control_dependencies([step_norm]):
      for var, value in zip(dln_variables,
                            dln_updaters.unflatten(phi, dln_variables)):
        var.assign(tf.cast(value, var.dtype))
      self.previous_state.assign(state)
    return (), {"teacher_gradient_norm": tf.linalg.global_norm(grads),
                "dlf_step_norm": step_norm}
