"""Dynamic loss networks (DLN): small networks that *are* the student's loss.

Paper: L2T-DLN, Sec. 3.1. The student minimises L_phi(S_theta(x), y) where the
DLN parameters phi are learned by the teacher (Eq. 3).

The DLNs:

* `PairwiseDLN` (classification, segmentation): the "1-vs-1" DLN. For every
  sample and every *wrong* class j != y it builds one row of features from the
  prediction for the true class and for class j, runs an MLP (`mlp`) on each
  row and averages the outputs. Pixels of a segmentation map are samples;
  pixels whose label is `ignore_label` contribute nothing.
* `DetectionDLN`: a single-layer perceptron over a vector of loss terms such
  as [l_cls, l_conf, l_loc], i.e. learned loss weights (`tasks/yolo_dln.py`
  computes those terms from YOLOv3's head outputs first: the engine imports
  no task).

All follow the Keras loss signature `dln(y_true, y_pred) -> scalar`.
"""
import gin
import keras
import tensorflow as tf

from l2t_tf import errors
from l2t_tf import mlp as mlp_lib

INPUT_MODES = ("sigmoid4", "softmax2")


def _kaiming_normal_fan_out(negative_slope):
  """He et al. (2015) normal init, fan_out mode, gain of LeakyReLU.

  Returns a *new* initializer: a Keras 3 initializer instance fixes its seed
  when it is constructed, so one instance shared by several `add_weight`
  calls would draw the same numbers for every layer. Call once per weight.
  """
  return keras.initializers.VarianceScaling(
      scale=2.0 / (1.0 + negative_slope**2), mode="fan_out",
      distribution="untruncated_normal")


@keras.saving.register_keras_serializable(package="l2t_tf")
class PairwiseDLN(keras.layers.Layer):
  """The classification/segmentation DLN ("1-vs-1" rows, paper Sec. 3.1).

  For logits z of shape [..., C] and integer labels y of shape [...]:

  * `input_mode="sigmoid4"` (authors' release, default): row (i, j) is
    [sigmoid(z_iy), sigmoid(z_ij), 1, 0] for j != y_i; rows with j == y_i are
    zero. The loss is the mean of the MLP outputs over all M*C rows (M samples),
    exactly as the release.
  * `input_mode="softmax2"` (the paper's reading): row (i, j) is
    [p_iy, p_ij] with p = softmax(z), j != y_i; same averaging.

  MLP: hidden widths `hidden_units` (default 40, 40, 40, 40), LeakyReLU with
  `negative_slope`, one linear output; kaiming-normal (fan_out) init; no
  biases by default (the release). Without biases a zero row maps to zero, so
  the j == y rows add nothing; with biases they are masked explicitly.

  Samples whose label equals `ignore_label` (e.g. 255 in VOC) are dropped from
  both numerator and denominator. If every sample is ignored the loss is 0.

  Call: `dln(y_true, y_pred)`; y_true int [...], y_pred float [..., C] logits
  (any rank >= 2, e.g. [B, C] or [B, H, W, C]); returns a scalar in the layer's
  dtype. y_true may also have a trailing axis of size 1, be a float tensor of
  whole numbers (as Keras passes labels to a loss), or hold one-hot rows
  [..., C] (read by their argmax, as Keras' categorical losses take them).
  """

  def __init__(self, hidden_units=(40, 40, 40, 40), input_mode="sigmoid4",
               negative_slope=0.01, use_bias=False, ignore_label=None,
               **kwargs):
    super().__init__(**kwargs)
    if input_mode not in INPUT_MODES:
      raise errors.UserError(f"PairwiseDLN.input_mode must be one of {INPUT_MODES}, "
                       f"got {input_mode!r}.")
    self.hidden_units = tuple(int(u) for u in hidden_units)
    self.input_mode = input_mode
    self.negative_slope = float(negative_slope)
    self.use_bias = bool(use_bias)
    self.ignore_label = ignore_label
    widths = (4 if input_mode == "sigmoid4" else 2,) + self.hidden_units + (1,)
    self.kernels, self.biases = mlp_lib.create_weights(
        self.add_weight, widths,  # A new initializer (seed) per kernel.
        lambda i, last: _kaiming_normal_fan_out(self.negative_slope),
        (lambda i, last: "zeros") if self.use_bias else None)
    self.built = True

  def rows(self, y_true, y_pred):
    """Feature rows [M, C, F] and their validity mask [M, C] (paper Sec. 3.1)."""
    y_pred = tf.cast(y_pred, self.compute_dtype)
    num_classes = tf.shape(y_pred)[-1]
    logits = tf.reshape(y_pred, [-1, num_classes])
    labels = tf.cast(tf.reshape(class_ids(y_true, y_pred), [-1]), tf.int32)
    valid = tf.ones_like(labels, dtype=tf.bool)
    if self.ignore_label is not None:
      valid = tf.not_equal(labels, self.ignore_label)
      labels = tf.where(valid, labels, tf.zeros_like(labels))
    onehot = tf.one_hot(labels, num_classes, dtype=logits.dtype)
    wrong = (1.0 - onehot) * tf.cast(valid, logits.dtype)[:, None]
    probs = (tf.sigmoid(logits) if self.input_mode == "sigmoid4"
             else tf.nn.softmax(logits, axis=-1))
    true_prob = tf.reduce_sum(probs * onehot, axis=-1, keepdims=True)
    features = [tf.broadcast_to(true_prob, tf.shape(probs)), probs]
    if self.input_mode == "sigmoid4":
      features += [tf.ones_like(probs), tf.zeros_like(probs)]
    return tf.stack(features, axis=-1) * wrong[..., None], wrong

  def mlp(self, rows, kernels=None, biases=None):
    """The MLP applied to the last axis: [..., F] -> [...] (`mlp.forward`).

    `kernels` / `biases` (tensors shaped like the layer's) replace its own
    weights, for fitting them functionally (`dln_warm_start`).
    """
    kernels = self.kernels if kernels is None else kernels
    biases = self.biases if biases is None else biases
    return mlp_lib.forward(rows, kernels, biases if self.use_bias else [],
                           self._activation, tensordot=True)[..., 0]

  def _activation(self, x):
    return tf.nn.leaky_relu(x, alpha=self.negative_slope)

  def call(self, y_true, y_pred):
    # The name scopes only label the ops for profiles (profile_round.py).
    with tf.name_scope("dln_rows"):
      rows, wrong = self.rows(y_true, y_pred)
    with tf.name_scope("dln_mlp"):
      out = self.mlp(rows)
    with tf.name_scope("dln_mean"):
      if self.use_bias:
        out = out * wrong
      # Mean over all M*C rows of valid samples (the release's mean over B*C).
      valid_rows = (tf.reduce_max(wrong, axis=-1, keepdims=True) *
                    tf.ones_like(wrong))
      return tf.math.divide_no_nan(tf.reduce_sum(out),
                                   tf.reduce_sum(valid_rows))

  def get_config(self):
    config = super().get_config()
    config.update(hidden_units=self.hidden_units, input_mode=self.input_mode,
                  negative_slope=self.negative_slope, use_bias=self.use_bias,
                  ignore_label=self.ignore_label)
    return config


@keras.saving.register_keras_serializable(package="l2t_tf")
class DetectionDLN(keras.layers.Layer):
  """The detection DLN: L = sum_k w_k * l_k (+ b), a single-layer perceptron.

  Paper Sec. 4.2: for YOLOv3 the DLN weighs the three loss terms
  [l_cls, l_conf, l_loc]. Initialised at w = 1 (b = 0), i.e. the plain sum,
  which is the baseline (lambda = 1, 1, 1).

  Call: `dln(y_true, y_pred)` with y_pred the loss terms [..., K]; y_true is
  ignored (pass None or anything). Terms of a batch ([B, K]) are averaged over
  the leading axes before weighting; returns a scalar.
  """

  def __init__(self, num_terms=3, use_bias=False, **kwargs):
    super().__init__(**kwargs)
    self.num_terms = int(num_terms)
    self.use_bias = bool(use_bias)
    self.kernel = self.add_weight(shape=(self.num_terms,), initializer="ones",
                                  name="kernel")
    self.bias = (self.add_weight(shape=(), initializer="zeros", name="bias")
                 if self.use_bias else None)
    self.built = True

  def call(self, y_true, y_pred):
    del y_true  # The loss terms already contain the targets.
    terms = tf.cast(y_pred, self.compute_dtype)
    terms = tf.reshape(terms, [-1, self.num_terms])
    loss = tf.reduce_sum(tf.reduce_mean(terms, axis=0) *
                         tf.cast(self.kernel, terms.dtype))
    if self.use_bias:
      loss = loss + tf.cast(self.bias, terms.dtype)
    return loss

  def get_config(self):
    config = super().get_config()
    config.update(num_terms=self.num_terms, use_bias=self.use_bias)
    return config


@gin.configurable
def classification_dln(hidden_units=(40, 40, 40, 40), input_mode="sigmoid4",
                       negative_slope=0.01, use_bias=False, ignore_label=None,
                       dtype=None):
  """Gin factory of `PairwiseDLN` (Keras layers cannot be gin classes)."""
  return PairwiseDLN(hidden_units=hidden_units, input_mode=input_mode,
                     negative_slope=negative_slope, use_bias=use_bias,
                     ignore_label=ignore_label, dtype=dtype)


@gin.configurable
def detection_dln(num_terms=3, use_bias=False, dtype=None):
  """Gin factory of `DetectionDLN`."""
  return DetectionDLN(num_terms=num_terms, use_bias=use_bias, dtype=dtype)


def class_ids(y_true, y_pred):
  """y_true as class ids: one-hot rows [..., C] (C > 1) by their argmax.

  Decided on static shapes: y_true with y_pred's rank and last axis C > 1 is
  one-hot; anything else ([...], [..., 1]) is already ids.
  """
  y_true = tf.convert_to_tensor(y_true)
  rank, classes = y_true.shape.rank, y_pred.shape[-1]
  if (rank is not None and rank == y_pred.shape.rank and classes is not None
      and classes > 1 and y_true.shape[-1] == classes):
    return tf.argmax(y_true, axis=-1, output_type=tf.int32)
  return y_true


def check_scalar_loss(dln, y_true, y_pred, student_loss=None):
  """Raises a UserError naming `dln` unless it makes a scalar of the batch.

  `y_true`, `y_pred`: a batch of the task's labels and student outputs.
  `student_loss(dln, y_true, y_pred)`: how the task applies its DLN (the
  task's `student_loss`; default `dln(y_true, y_pred)`). A DLN or a student
  made for another task fails here, before teaching.
  """
  student_loss = student_loss or (lambda loss, y, outputs: loss(y, outputs))
  try:
    out = student_loss(dln, y_true, y_pred)
  except (ValueError, TypeError, tf.errors.InvalidArgumentError) as e:
    shapes = tf.nest.map_structure(lambda t: list(t.shape), (y_true, y_pred))
    raise errors.UserError(
        f"dln: {type(dln).__name__} cannot take this task's labels (shape "
        f"{shapes[0]}) and student outputs (shapes {shapes[1]}): are the "
        f"task's student and dln bindings made for this task? "
        f"({type(e).__name__})") from e
  if out.shape.rank != 0:
    raise errors.UserError(
        f"dln: the dynamic loss network must return a scalar loss, got shape "
        f"{out.shape} from {type(dln).__name__}(y_true, y_pred).")
  return out


def is_pairwise(dln):
  """Whether `dln` is a `PairwiseDLN` (it has a properness and a surface)."""
  return isinstance(dln, PairwiseDLN)
