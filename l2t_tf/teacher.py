"""The coordinate-wise stacked-LSTM teacher (paper Sec. 3.2, Eq. 3 and 8).

The teacher reads the DLN hypergradient one coordinate at a time (every DLN
parameter is a row of a batch) and writes the DLN update g, so that
phi_1 = phi_0 + gamma * g (Eq. 3). As in Andrychowicz et al. (2016) and the
authors' release: four LSTM cells 2 -> 64 -> 64 -> 64 -> 1, the gradient
preprocessed into two features, the output multiplied by `output_scale`
(= gamma, 1e-3). The LSTM state is carried across teacher rounds with its
gradient stopped.

Initialisation (the paper is silent): `"release"` (default) draws every
weight of a cell of H units from U(-1/sqrt(H), 1/sqrt(H)) and its bias as
the sum of two such draws, PyTorch's `nn.LSTMCell` default (b_ih + b_hh), as
the authors' release; its first outputs are ~0.07 for typical
hypergradients. `"keras"` keeps Keras' defaults (glorot-uniform kernel,
orthogonal recurrent kernel, unit forget bias), whose first outputs are
~2e-4, so the DLN barely moves. `zero_last_cell=True` (ours, off by default)
zeroes the last cell's weights: its output, hence the teacher's drift,
starts at exactly 0 and grows only as the teacher learns.

`descent_skip=True` (ours, off by default) adds a learned linear read-out of
the preprocessed gradient to the last cell's output,
    T(g) = output_scale * (h_last + [log|g|/k, s(g)] . w),  w_0 = (0, -1),
so that the teacher starts as a sign-descent step on phi (s(g) = sign g
for |g| >= e^-k) and the LSTM learns a correction. The diagnostics showed
why (issue 12): through three 64-unit cells at their initial scale the last
cell's output hardly depends on the gradient, so in a few hundred rounds the
teacher learns no descent direction (cos(step, -g) stayed ~0).
"""
import math

import keras
import tensorflow as tf

from l2t_tf import errors

INITIALIZATIONS = ("release", "keras")


class SumOfUniforms(keras.initializers.Initializer):
  """The sum of `count` independent U(-limit, limit) draws (PyTorch's LSTM bias)."""

  def __init__(self, limit, count=2):
    self.limit, self.count = float(limit), int(count)
    # One initializer per draw: an instance fixes its seed when constructed.
    self.parts = [keras.initializers.RandomUniform(-self.limit, self.limit)
                  for _ in range(self.count)]

  def __call__(self, shape, dtype=None):
    return sum(part(shape, dtype) for part in self.parts)

  def get_config(self):
    return {"limit": self.limit, "count": self.count}


def _cell_initializers(units, initialization, zero):
  """LSTMCell keyword arguments for `initialization` (new instances each call)."""
  if zero:
    return dict(kernel_initializer="zeros", recurrent_initializer="zeros",
                bias_initializer="zeros", unit_forget_bias=False)
  if initialization == "keras":
    return {}
  limit = 1.0 / math.sqrt(units)
  return dict(
      kernel_initializer=keras.initializers.RandomUniform(-limit, limit),
      recurrent_initializer=keras.initializers.RandomUniform(-limit, limit),
      bias_initializer=SumOfUniforms(limit), unit_forget_bias=False)


def preprocess_gradient(gradient, k=10.0):
  """Andrychowicz et al. (2016), Appendix A: g -> [P, 2] features.

  For |g| >= exp(-k): (log|g| / k, sign g); otherwise (-1, exp(k) * g).
  Args:
    gradient: [P] float tensor.
    k: the preprocessing factor (10 in the paper and the release).
  Returns:
    [P, 2] tensor of the same dtype.
  """
  gradient = tf.convert_to_tensor(gradient)
  magnitude = tf.abs(gradient)
  keep = magnitude >= math.exp(-k)
  # The where-trick keeps log() away from zeros so gradients stay finite.
  safe = tf.where(keep, magnitude, tf.ones_like(magnitude))
  first = tf.where(keep, tf.math.log(safe) / k, -tf.ones_like(gradient))
  second = tf.where(keep, tf.sign(gradient), math.exp(k) * gradient)
  return tf.stack([first, second], axis=-1)


class LSTMTeacher(keras.layers.Layer):
  """Stacked LSTM teacher T_phi: (hypergradient [P], state) -> (step [P], state).

  `hidden_units` are the widths of all but the last cell; the last cell has one
  unit and its hidden output, times `output_scale`, is the step for each
  coordinate. State: a list with one [h, c] pair per cell, h and c [P, units].
  `initialization` is "release" or "keras" (module docstring).
  """

  def __init__(self, hidden_units=(64, 64, 64), preprocess_factor=10.0,
               output_scale=1e-3, initialization="release",
               zero_last_cell=False, descent_skip=False, **kwargs):
    super().__init__(**kwargs)
    if initialization not in INITIALIZATIONS:
      raise errors.UserError(f"teacher initialization must be one of "
                             f"{INITIALIZATIONS}, got {initialization!r}.")
    self.hidden_units = tuple(int(u) for u in hidden_units)
    self.preprocess_factor = float(preprocess_factor)
    self.output_scale = float(output_scale)
    units = self.hidden_units + (1,)
    self.cells = [keras.layers.LSTMCell(
        u, dtype=self.dtype_policy, name=f"lstm_{i}", **_cell_initializers(
            u, initialization, zero_last_cell and i == len(units) - 1))
                  for i, u in enumerate(units)]
    n_in = 2
    for cell in self.cells:
      cell.build((None, n_in))
      n_in = cell.units
    self.skip = (self.add_weight(
        shape=(2,), name="descent_skip",
        initializer=keras.initializers.Constant([0.0, -1.0]))
                 if descent_skip else None)
    self.built = True

  @property
  def state_sizes(self):
    return [cell.units for cell in self.cells]

  def initial_state(self, num_coordinates, dtype=None):
    dtype = dtype or self.compute_dtype
    return [[tf.zeros((num_coordinates, u), dtype),
             tf.zeros((num_coordinates, u), dtype)] for u in self.state_sizes]

  def call(self, gradient, state):
    with tf.name_scope("teacher"):  # A label for profiles only.
      features = preprocess_gradient(tf.cast(gradient, self.compute_dtype),
                                     self.preprocess_factor)
      x, new_state = features, []
      for cell, (h, c) in zip(self.cells, state):
        x, (h, c) = cell(x, [h, c])
        new_state.append([h, c])
      out = x[:, 0]
      if self.skip is not None:
        out = out + tf.tensordot(features, tf.cast(self.skip, out.dtype), 1)
      return self.output_scale * out, new_state
