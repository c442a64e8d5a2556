"""The coordinate-wise stacked-LSTM teacher (paper Sec. 3.2, Eq. 3 and 8).

The teacher reads the DLN hypergradient one coordinate at a time (every DLN
parameter is a row of a batch) and writes the DLN update g, so that
phi_1 = phi_0 + gamma * g (Eq. 3). As in Andrychowicz et al. (2016) and the
authors' release: four LSTM cells 2 -> 64 -> 64 -> 64 -> 1, the gradient
preprocessed into two features, the output multiplied by `output_scale`
(= gamma, 1e-3). The LSTM state is carried across teacher rounds with its
gradient stopped.
"""
import math

import keras
import tensorflow as tf


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
  """

  def __init__(self, hidden_units=(64, 64, 64), preprocess_factor=10.0,
               output_scale=1e-3, **kwargs):
    super().__init__(**kwargs)
    self.hidden_units = tuple(int(u) for u in hidden_units)
    self.preprocess_factor = float(preprocess_factor)
    self.output_scale = float(output_scale)
    self.cells = [keras.layers.LSTMCell(u, dtype=self.dtype_policy,
                                        name=f"lstm_{i}")
                  for i, u in enumerate(self.hidden_units + (1,))]
    n_in = 2
    for cell in self.cells:
      cell.build((None, n_in))
      n_in = cell.units
    self.built = True

  @property
  def state_sizes(self):
    return [cell.units for cell in self.cells]

  def initial_state(self, num_coordinates, dtype=None):
    dtype = dtype or self.compute_dtype
    return [[tf.zeros((num_coordinates, u), dtype),
             tf.zeros((num_coordinates, u), dtype)] for u in self.state_sizes]

  def call(self, gradient, state):
    x = preprocess_gradient(tf.cast(gradient, self.compute_dtype),
                            self.preprocess_factor)
    new_state = []
    for cell, (h, c) in zip(self.cells, state):
      x, (h, c) = cell(x, [h, c])
      new_state.append([h, c])
    return self.output_scale * x[:, 0], new_state
