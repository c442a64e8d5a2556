"""Rematerialisation that also saves memory in second-order gradients.

The hypergradient differentiates through the student's gradient (a
Hessian-vector product per unrolled step, Eq. 5-6). `tf.recompute_grad`
alone does not help there: the outer tape records everything the inner
backward pass computes, recomputed activations included. `Rematerialized`
checkpoints at two levels:

* forward: a block's internals are not kept; its gradient function
  recomputes them (like `tf.recompute_grad`);
* backward: the block's vector-Jacobian product is itself one checkpointed
  op, so a tape that records the backward pass (the HVP's
  outer tape) keeps only its inputs and outputs and recomputes the VJP's
  internals when it is differentiated (`checkpointed`).

So a tape holds the block boundaries (input, output, their cotangents) and
one block's working set at a time, in first and second order, at the price
of running each block's forward up to three times. The values and
derivatives are unchanged (tests/students/test_remat.py checks an HVP
against the plain block in float64).

Works inside `Model.stateless_call` (the hypergradient engine's way of
running the student): the block's weights are read from the current
stateless scope and passed in explicitly, and its BatchNorm statistics are
written back to it.
"""
import keras
import tensorflow as tf


def _after(tensors, dependency):
  """`tensors` re-issued so that graph optimisers cannot merge the recompute
  with the first forward pass (as `tf.recompute_grad` does: a data
  dependency on the incoming gradient, through a never-true `tf.cond`)."""
  first = tf.reduce_max(tf.reshape(dependency, [-1])[:1])
  never = tf.cast(first * 0.0, tf.float32) > 1.0  # NaN and inf also False.
  return [tf.cond(never, lambda t=t: tf.identity(t), lambda t=t: t)
          for t in tensors]


def checkpointed(fn):
  """`fn` (tensors -> list of tensors) as one op whose gradient recomputes it.

  Unlike `tf.recompute_grad`, the forward runs with tapes recording (so `fn`
  may use a `GradientTape` of its own) and the gradient is itself
  differentiable.
  """
  @tf.custom_gradient
  def op(*args):
    def grad(*output_gradients):
      with tf.GradientTape() as tape:
        inputs = _after(args, output_gradients[0])
        tape.watch(inputs)
        outputs = fn(*inputs)
      return tape.gradient(outputs, inputs, output_gradients=output_gradients,
                           unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return fn(*args), grad
  return op


def rematerialize(fn):
  """`fn` (tensors -> tensor or list of tensors) rematerialised twice over.

  The returned function computes the same values. Its gradient recomputes
  `fn` instead of storing its internals, and that gradient (the VJP) is one
  `checkpointed` op, so a tape recording the backward pass stores only the
  VJP's inputs and outputs too. `fn` must be deterministic; outputs that do
  not depend on the inputs (e.g. stopped statistics) get zero gradients.
  """
  def call(*inputs):
    num_inputs = len(inputs)

    def vjp(*args):
      xs, dys = list(args[:num_inputs]), list(args[num_inputs:])
      xs = _after(xs, dys[0])  # Recompute, do not reuse, the forward pass.
      with tf.GradientTape() as tape:
        tape.watch(xs)
        ys = tf.nest.flatten(fn(*xs))
      return tape.gradient(ys, xs, output_gradients=dys,
                           unconnected_gradients=tf.UnconnectedGradients.ZERO)
    vjp = checkpointed(vjp)

    @tf.custom_gradient
    def forward(*xs):
      ys = fn(*xs)
      flat = tf.nest.flatten(ys)

      def grad(*dys):
        dys = [tf.zeros_like(y) if d is None else d for y, d in zip(flat, dys)]
        return vjp(*xs, *dys)
      return ys, grad
    return forward(*inputs)
  return call


class Rematerialized(keras.layers.Layer):
  """Wraps a deterministic Keras `block` (a model of one input and output).

  The block must not draw random numbers (no dropout): it is run again in the
  backward pass and must give the same values.
  """

  def __init__(self, block, **kwargs):
    super().__init__(**kwargs)
    self.block = block

  def build(self, input_shape):
    del input_shape  # The block is built already.

  def call(self, x, training=False):
    block = self.block
    weights = [v.value for v in block.trainable_variables]
    non_trainable = [v.value for v in block.non_trainable_variables]

    def run(x, *weights):
      y, state = block.stateless_call(list(weights), non_trainable, x,
                                      training=training)
      return [y] + [tf.stop_gradient(s) for s in state]

    y, *state = rematerialize(run)(x, *weights)
    if training:
      for var, value in zip(block.non_trainable_variables, state):
        var.assign(value)
    return y

  def compute_output_shape(self, input_shape):
    return self.block.compute_output_shape(input_shape)
