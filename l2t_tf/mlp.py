"""The multilayer perceptrons of the DLN, the L2T-DLF teacher and ALA's policy.

An MLP of widths (n_0, ..., n_L) has kernels W_i [n_i, n_{i+1}] and,
optionally, biases b_i [n_{i+1}], i = 0 .. L - 1. Its forward pass is

    x_{i+1} = act(x_i W_i + b_i),   the last layer linear (no act),

i.e. `PairwiseDLN`'s MLP of paper Sec. 3.1 (LeakyReLU, no biases), the
L2T-DLF teacher mu_theta (tanh) and the ALA policy pi_theta (ReLU).

Weights are created by `create_weights` through an `add_weight(shape,
initializer, name)` callable: a Keras layer's own `add_weight` (the DLN, the
L2T-DLF teacher), or `variable_creator(dtype)` for plain `tf.Variable`s with
stateless initializers (the ALA policy, a `tf.Module`). Names are
`{prefix}kernel_{i}` and `{prefix}bias_{i}`, created in the order kernel_0,
bias_0, kernel_1, ...
"""
import numpy as np
import tensorflow as tf


def create_weights(add_weight, widths, kernel_initializer,
                   bias_initializer=None, prefix=""):
  """Creates the kernels and biases of an MLP, layer by layer.

  Args:
    add_weight: `add_weight(shape=, initializer=, name=) -> variable`.
    widths: (n_0, ..., n_L): input features, hidden widths, outputs.
    kernel_initializer: `kernel_initializer(i, last) -> initializer` of
      W_i, `last` True for the output layer. It is called right before W_i
      is created: a Keras 3 initializer fixes its seed when it is
      constructed, so returning a new instance per call draws a new seed
      per kernel, in creation order.
    bias_initializer: the same for b_i, or None for an MLP without biases.
    prefix: prefix of the variable names.

  Returns:
    (kernels, biases): lists of L variables, kernels[i] [n_i, n_{i+1}] and
    biases[i] [n_{i+1}]; `biases` is empty without biases.
  """
  kernels, biases = [], []
  for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
    last = i == len(widths) - 2
    kernels.append(add_weight(shape=(n_in, n_out), name=f"{prefix}kernel_{i}",
                              initializer=kernel_initializer(i, last)))
    if bias_initializer is not None:
      biases.append(add_weight(shape=(n_out,), name=f"{prefix}bias_{i}",
                               initializer=bias_initializer(i, last)))
  return kernels, biases


def forward(x, kernels, biases, activation, tensordot=False):
  """The MLP on the last axis of x: [..., n_0] -> [..., n_L].

  Args:
    x: [B, n_0] input (any rank >= 1 with `tensordot=True`).
    kernels: W_i [n_i, n_{i+1}] (variables or tensors), cast to x's dtype.
    biases: b_i [n_{i+1}] cast likewise, or empty for no biases.
    activation: the hidden layers' activation, a callable on tensors.
    tensordot: contract with `tf.tensordot(x, W, axes=1)` instead of
      `tf.matmul(x, W)` (which needs a rank-2 x).

  Returns:
    x_L [..., n_L] in x's dtype.
  """
  for i, kernel in enumerate(kernels):
    kernel = tf.cast(kernel, x.dtype)
    x = (tf.tensordot(x, kernel, axes=1) if tensordot
         else tf.matmul(x, kernel))
    if biases:
      x = x + tf.cast(biases[i], x.dtype)
    if i < len(kernels) - 1:
      x = activation(x)
  return x


def variable_creator(dtype):
  """`add_weight` for plain `tf.Variable`s of `dtype`.

  Its initializers are callables `(shape, dtype) -> tensor`, e.g. `zeros`
  or `stateless_glorot_uniform(seed)`.
  """
  def add_weight(shape, initializer, name):
    return tf.Variable(initializer(list(shape), dtype), name=name)
  return add_weight


def zeros(shape, dtype):
  """Initializer of `variable_creator`: all zeros."""
  return tf.zeros(shape, dtype)


def stateless_glorot_uniform(seed):
  """Initializer of `variable_creator`: U(-l, l), l = sqrt(6 / (n_in + n_out)).

  Stateless: the numbers depend on `seed` (a shape [2] integer seed of
  `tf.random.stateless_uniform`) only, not on any global random state.
  """
  def initializer(shape, dtype):
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return tf.random.stateless_uniform(shape, seed, -limit, limit, dtype)
  return initializer
