"""Exact hypergradients through N unrolled student SGD steps (paper Eq. 4-6).

The student takes N SGD steps on the DLN loss,
    theta_{t+1} = theta_t - eta * dL_phi(S_{theta_t}(x_t), y_t)/dtheta_t,
then the validation error e = e_val(theta_N) is measured. This module returns
de/dphi, the gradient of e with respect to the DLN variables phi, exactly.
Two ways, equal to round-off:

* `"unrolled"`: nested `tf.GradientTape`s record all N steps (inner tapes give
  the student gradients, the outer tape differentiates through them); one
  backward pass then yields de/dphi. Fastest; memory grows with N. The steps
  run in a `tf.while_loop`, so the graph and its tracing time do not grow
  with N (a Python-unrolled loop of N = 25 ResNet8 steps took minutes to
  trace).
* `"reverse"`: Eq. 4-6 written out. A forward pass stores theta_t (and the
  BatchNorm statistics); the backward pass walks t = N-1 ... 0, recomputing
  one step at a time, with the adjoint a_{t+1} = de/dtheta_{t+1}:
      de/dphi  += -eta * (d^2 L / dphi dtheta_t)^T a_{t+1}        (Eq. 5)
      a_t       = a_{t+1} - eta * (d^2 L / dtheta_t^2) a_{t+1}   (Eq. 6)
  both as one Hessian-vector product. Memory holds N copies of theta but no
  graph of N steps: an N = 75 unroll fits on a laptop.

BatchNorm runs in training mode during the steps and its moving statistics
are carried through them as constants (not differentiated, as in Eq. 4-6 and
the authors' release). The validation error uses inference mode (moving
statistics) by default here; `validation_training=True` evaluates it in
training mode on the validation batch's own statistics, as the release does.
Second derivatives through BatchNorm are exact only with
`l2t_tf.students.batch_norm.BatchNormalization` (Keras' own layer stops the
gradient through the batch mean in its variance: exact in first order, not
in second); every student of the package uses it.

Under a `tf.distribute` strategy, call `unroll` inside `strategy.run`: the
student gradients of every step are averaged over replicas (all-reduce MEAN,
differentiable), so all replicas take the same steps as one device on the
whole batch, and the MEAN of the per-replica hypergradients is the full-batch
hypergradient.

Compile the loops with `hypergradient.function`, not `tf.function` (issue 13):
it is `tf.function` with grappler's memory optimizer turned off, whose AddN
rewrite breaks the gradients of while loops on big students. Its default
`jit_compile` is the gin knob `loop_jit_compile.enabled` (None: TensorFlow's
default, no XLA; True: XLA for every loop function, e.g. the teaching round's).
"""
import collections
import contextlib
import functools
import weakref

import gin
import tensorflow as tf
# Private TF API: the only handle on a function call's grappler config
# (tf.config.optimizer.set_experimental_options has no memory_optimization).
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.eager import context as eager_context

from l2t_tf import errors

MODES = ("unrolled", "reverse")
# Name scopes of the parts of an unroll (labels only, for profiles:
# tools/profile_round.py sorts the ops of a trace by them). The gradients of
# the outer tape, i.e. everything differentiated through the N steps, are
# under HYPERGRADIENT; the N steps' own forward and backward (the inner
# tapes) under STUDENT_STEPS; e_val(theta_N) under VALIDATION_ERROR.
STUDENT_STEPS = "student_steps"
HYPERGRADIENT = "hypergradient"
VALIDATION_ERROR = "validation_error"


def check_mode(mode, name="mode"):
  """Raises a UserError naming `name` unless `mode` is one of MODES."""
  if mode not in MODES:
    raise errors.UserError(f"{name} must be one of {MODES}, got {mode!r}.")


Unroll = collections.namedtuple(
    "Unroll", ["gradients", "validation_error", "trainable", "non_trainable",
               "train_loss"])


_NO_MEM_OPT = rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
_CALL_OPTIONS = {}  # config_proto_serialized -> FunctionCallOptions.


@contextlib.contextmanager
def _memory_optimizer_off():
  """Eager calls of `tf.function`s in this block skip the memory optimizer.

  Grappler optimises a function the first time it is called, with the
  ConfigProto of the calling thread's `function_call_options` (part of the
  instantiation key, so the same function may also run elsewhere with the
  default config). Only `memory_optimization` is changed: everything else,
  including `tf.config.optimizer.set_experimental_options`, stays.
  """
  ctx = eager_context.context()
  options = ctx.function_call_options
  key = options.config_proto_serialized
  if key not in _CALL_OPTIONS:
    config = config_pb2.ConfigProto.FromString(key or b"")
    config.graph_options.rewrite_options.memory_optimization = _NO_MEM_OPT
    _CALL_OPTIONS[key] = eager_context.FunctionCallOptions(
        executor_type=options.executor_type, config_proto=config)
  ctx.function_call_options = _CALL_OPTIONS[key]
  try:
    yield
  finally:
    ctx.function_call_options = options


class _Function:
  """A `tf.function` whose eager calls run without the memory optimizer."""

  def __init__(self, function):
    self._function = function
    functools.update_wrapper(self, function, updated=())

  def __call__(self, *args, **kwargs):
    if not tf.executing_eagerly():  # Inside a graph the caller's config rules.
      return self._function(*args, **kwargs)
    with _memory_optimizer_off():
      return self._function(*args, **kwargs)

  def __getattr__(self, name):  # get_concrete_function, tracing counts, ...
    return getattr(self._function, name)


@gin.configurable
def loop_jit_compile(enabled=None):
  """Gin knob: the default `jit_compile` of `function`.

  Bind `loop_jit_compile.enabled = True` to XLA-compile every function made
  by `function` from then on (the teaching round's stages and plain steps,
  `unrolled_hypergradient`'s unroll); it is read when a function is made.
  On the CPU it made the round slower (docs/speed.md).

  Args:
    enabled: None (default): `tf.function`'s own default (no XLA unless
      `tf.config.optimizer.set_jit`); True or False: passed as `jit_compile`.
  Returns:
    `enabled`, the `jit_compile` argument.
  """
  return enabled


def function(fn=None, **kwargs):
  """`tf.function(fn, **kwargs)` without grappler's memory optimizer.

  Use it for every function that runs student steps in a `tf.while_loop`
  (issue 13). When the static estimate of a graph's peak memory exceeds 80 %
  of the device's memory limit (256 MiB for TF's CPU device), the memory
  optimizer's scheduling pass rewrites each AddN of more than two inputs
  that are live at the peak into TemporaryVariable + AssignAdd +
  DestroyTemporaryVariable. Inside a while loop this is wrong: the
  TemporaryVariable waits (by a control edge) for one input only and also
  runs in the loop's last iteration, the one whose condition is false,
  where the AssignAdds and the destroy are dead. That iteration's variable
  leaks into the step container, and the next call of a function with the
  same node names fails with `AlreadyExistsError ... AddN_<k>/tmp_var/
  frame:.../iter:<N>` (N = number of steps). The gradient of the unrolled
  loop has dozens of such AddNs (aggregated gradients of tensors that the
  second-order graph uses three or more times); the wide ResNet8 (width 64,
  batch 25) crosses the threshold, the narrow one (width 16) does not.
  Without that rewrite the memory optimizer leaves CPU graphs as they are
  (its recomputation needs explicit hints, its swapping a GPU), so graphs
  below the threshold run unchanged and bit for bit equal. On a GPU this
  also turns off its swapping heuristics.

  Only eager (top-level) calls are affected: called inside another
  `tf.function`, the function is inlined and grappler uses the outer call's
  config, so the outermost function must be made with this one.

  `jit_compile` defaults to `loop_jit_compile()` (gin; None unless bound).
  """
  if fn is None:
    return lambda f: function(f, **kwargs)
  kwargs.setdefault("jit_compile", loop_jit_compile())
  return _Function(tf.function(fn, **kwargs))


def sparse_cross_entropy(y_true, logits):
  """Mean softmax cross-entropy; y_true int [...], logits [..., C] -> scalar."""
  labels = tf.reshape(tf.cast(y_true, tf.int32), tf.shape(logits)[:-1])
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits))


def replica_mean(values):
  """All-reduce MEAN over replicas (identity on one replica)."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return values
  return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, values)


def stateless_apply(student):
  """(trainable, non_trainable, x, training) -> (outputs, non_trainable)."""
  def apply(trainable, non_trainable, x, training):
    return student.stateless_call(trainable, non_trainable, x,
                                  training=training)
  return apply


def _loop(start, stop, step, body, loop_vars):
  """for t in range(start, stop, step): loop_vars = body(t, *loop_vars).

  A `tf.while_loop` keeps the graph independent of N. MirroredStrategy cannot
  all-reduce inside control flow, so with several replicas the loop is
  unrolled in Python (N must then be static); per-step tapes still free each
  step's activations, so memory stays flat in N. parallel_iterations=1:
  the steps are sequential anyway, and prefetching later iterations tripled
  the memory of a reverse-mode N = 75 round.
  """
  ctx = tf.distribute.get_replica_context()
  if ctx is not None and ctx.num_replicas_in_sync > 1:
    for t in range(int(start), int(stop), step):
      loop_vars = body(tf.constant(t), *loop_vars)
    return loop_vars
  cond = (lambda t, *_: t < stop) if step > 0 else (lambda t, *_: t > stop)
  static = all(isinstance(b, int) for b in (start, stop))
  return tf.while_loop(  # XLA (jit_compile) needs maximum_iterations.
      cond, lambda t, *v: (t + step,) + tuple(body(t, *v)),
      (start,) + tuple(loop_vars), parallel_iterations=1,
      maximum_iterations=(stop - start) // step if static else None)[1:]


def _num_steps(batches):
  """N: static if known (needed with several replicas), else a tensor."""
  n = tf.nest.flatten(batches)[0].shape[0]
  return n if n is not None else tf.shape(tf.nest.flatten(batches)[0])[0]


def _step_batch(batches, t):
  return tf.nest.map_structure(lambda a: a[t], batches)


def student_gradient(apply_fn, trainable, non_trainable, loss_fn, batch):
  """dL/dtheta on one batch, averaged over replicas.

  Returns (gradients, loss, new non-trainable state with gradient stopped).
  """
  x, y = batch
  with tf.GradientTape() as tape:
    tape.watch(trainable)
    outputs, new_state = apply_fn(trainable, non_trainable, x, True)
    loss = loss_fn(y, outputs)
  grads = tape.gradient(loss, trainable,
                        unconnected_gradients=tf.UnconnectedGradients.ZERO)
  new_state = [tf.stop_gradient(s) for s in new_state]
  return replica_mean(grads), loss, new_state


def _sgd(trainable, grads, learning_rate):
  return [w - tf.cast(learning_rate, w.dtype) * g
          for w, g in zip(trainable, grads)]


def _validation_error(apply_fn, trainable, non_trainable, loss_fn, batch,
                      training=False):
  x, y = batch
  outputs, _ = apply_fn(trainable, non_trainable, x, training)
  return loss_fn(y, outputs)


def sgd_steps(apply_fn, trainable, non_trainable, loss_fn, batches,
              learning_rate):
  """N plain SGD steps (no hypergradient). Returns (theta_N, state_N, mean loss)."""
  n = _num_steps(batches)

  def body(t, theta, state, loss_sum):
    grads, loss, state = student_gradient(apply_fn, theta, state, loss_fn,
                                          _step_batch(batches, t))
    return (_sgd(theta, grads, learning_rate), state,
            loss_sum + tf.cast(loss, loss_sum.dtype))

  loss_dtype = trainable[0].dtype
  with tf.name_scope(STUDENT_STEPS):
    theta, state, loss_sum = _loop(
        0, n, 1, body,
        (list(trainable), list(non_trainable), tf.zeros([], loss_dtype)))
  return theta, state, loss_sum / tf.cast(n, loss_dtype)


def _unrolled(apply_fn, trainable, non_trainable, train_loss, validation_loss,
              batches, validation_batch, learning_rate, wrt,
              validation_training):
  with tf.GradientTape() as outer:
    # The outer tape records the whole loop (a while loop keeps the graph,
    # and so the tracing time, independent of N; its gradient accumulates
    # every step's intermediates like a Python-unrolled loop would).
    theta, state, train_loss_mean = sgd_steps(
        apply_fn, trainable, non_trainable, train_loss, batches,
        learning_rate)
    with tf.name_scope(VALIDATION_ERROR):
      error = _validation_error(apply_fn, theta, state, validation_loss,
                                validation_batch, validation_training)
  with tf.name_scope(HYPERGRADIENT):
    gradients = outer.gradient(
        error, wrt, unconnected_gradients=tf.UnconnectedGradients.ZERO)
  return Unroll(gradients, error, theta, state, train_loss_mean)


def _reverse(apply_fn, trainable, non_trainable, train_loss, validation_loss,
             batches, validation_batch, learning_rate, wrt,
             validation_training):
  n = _num_steps(batches)
  zero = tf.UnconnectedGradients.ZERO

  def arrays(tensors):
    return [tf.TensorArray(t.dtype, size=n, element_shape=t.shape)
            for t in tensors]

  # Forward: store theta_t and the BatchNorm statistics of every step.
  def forward(t, theta, state, theta_ta, state_ta, loss_sum):
    theta_ta = [ta.write(t, w) for ta, w in zip(theta_ta, theta)]
    state_ta = [ta.write(t, s) for ta, s in zip(state_ta, state)]
    grads, loss, state = student_gradient(apply_fn, theta, state, train_loss,
                                          _step_batch(batches, t))
    return (_sgd(theta, grads, learning_rate), state, theta_ta, state_ta,
            loss_sum + tf.cast(loss, loss_sum.dtype))

  loss_dtype = trainable[0].dtype
  with tf.name_scope(STUDENT_STEPS):
    theta, state, theta_ta, state_ta, loss_sum = _loop(
        0, n, 1, forward,
        (list(trainable), list(non_trainable), arrays(trainable),
         arrays(non_trainable), tf.zeros([], loss_dtype)))

  with tf.GradientTape() as tape:
    tape.watch(theta)
    with tf.name_scope(VALIDATION_ERROR):
      error = _validation_error(apply_fn, theta, state, validation_loss,
                                validation_batch, validation_training)
  with tf.name_scope(HYPERGRADIENT):
    adjoint = tape.gradient(error, theta, unconnected_gradients=zero)

  # Backward: Eq. 5-6, one Hessian-vector product per step.
  def backward(t, adjoint, dphi):
    theta_t = [ta.read(t) for ta in theta_ta]
    state_t = [ta.read(t) for ta in state_ta]
    with tf.GradientTape() as outer:
      outer.watch(theta_t)
      grads, _, _ = student_gradient(apply_fn, theta_t, state_t, train_loss,
                                     _step_batch(batches, t))
    h_theta, h_phi = outer.gradient(grads, (theta_t, wrt),
                                    output_gradients=adjoint,
                                    unconnected_gradients=zero)
    return (_sgd(adjoint, h_theta, learning_rate),
            [d - tf.cast(learning_rate, d.dtype) * h
             for d, h in zip(dphi, h_phi)])

  with tf.name_scope(HYPERGRADIENT):
    _, gradients = _loop(
        n - 1, -1, -1, backward,
        (adjoint, [tf.zeros(v.shape, v.dtype) for v in wrt]))
  return Unroll(gradients, error, theta, state,
                loss_sum / tf.cast(n, loss_dtype))


def unroll(apply_fn, trainable, non_trainable, train_loss, validation_loss,
           batches, validation_batch, learning_rate, wrt, mode="unrolled",
           validation_training=False):
  """The engine: N SGD steps, then e_val and de_val/d(wrt).

  Args:
    apply_fn: (trainable, non_trainable, x, training) -> (outputs, state),
      e.g. `stateless_apply(student)`.
    trainable: list of student weight tensors theta_0.
    non_trainable: list of student state tensors (BatchNorm statistics).
    train_loss: (y, outputs) -> scalar, the DLN loss L_phi.
    validation_loss: (y, outputs) -> scalar, e_val.
    batches: (xs, ys), nests whose leaves have a leading axis of length N.
    validation_batch: (x, y).
    learning_rate: student SGD learning rate eta (scalar).
    wrt: the variables to differentiate e_val with respect to (the DLN's).
    mode: "unrolled" or "reverse".
    validation_training: evaluate e_val with BatchNorm in training mode
      (the validation batch's own statistics, as the release) instead of
      inference mode (the carried moving statistics).
  Returns:
    `Unroll(gradients, validation_error, trainable, non_trainable,
    train_loss)`: de/d(wrt) in the order of `wrt`, e_val(theta_N), theta_N,
    the state after N steps and the mean training loss of the N steps.
  """
  check_mode(mode)
  engine = _unrolled if mode == "unrolled" else _reverse
  return engine(apply_fn, list(trainable), list(non_trainable), train_loss,
                validation_loss, batches, validation_batch, learning_rate,
                list(wrt), bool(validation_training))


_COMPILED = weakref.WeakKeyDictionary()


def _compiled(student, dln, validation_loss, mode, validation_training):
  """One `tf.function` per (student, dln, loss, mode, BN mode of e_val)."""
  per_student = _COMPILED.setdefault(student, {})
  key = (id(dln), id(validation_loss), mode, validation_training)
  if key not in per_student:
    @function
    def fn(batches, validation_batch, learning_rate):
      result = unroll(
          stateless_apply(student),
          [v.value for v in student.trainable_variables],
          [v.value for v in student.non_trainable_variables],
          dln, validation_loss, batches, validation_batch, learning_rate,
          dln.trainable_variables, mode, validation_training)
      return result.gradients, result.validation_error
    per_student[key] = (dln, fn)
  return per_student[key][1]


def unrolled_hypergradient(student, dln, train_batches, validation_batch,
                           learning_rate, validation_loss=None,
                           mode="unrolled", validation_training=False):
  """de_val/dphi after N SGD steps of `student` on the loss `dln`.

  Args:
    student: a built Keras model; its weights are not changed.
    dln: a Keras layer called as `dln(y_true, y_pred)` returning a scalar.
    train_batches: a sequence of N `(x, y)` pairs, one per SGD step.
    validation_batch: one `(x, y)` pair.
    learning_rate: the student's SGD learning rate.
    validation_loss: `(y_true, y_pred) -> scalar`; default sparse
      categorical cross-entropy on logits.
    mode: "unrolled" (nested tapes, fastest) or "reverse" (Eq. 4-6 with
      recomputation, memory flat in N).
    validation_training: e_val with BatchNorm in training mode (see `unroll`).
  Returns:
    (gradients, validation_error): a list of tensors shaped like
    `dln.trainable_variables`, in that order, and e_val(theta_N).
  """
  if not train_batches:
    raise errors.UserError("train_batches must hold N >= 1 (x, y) pairs.")
  check_mode(mode)
  xs = tf.nest.map_structure(lambda *a: tf.stack(a), *[b[0] for b in train_batches])
  ys = tf.nest.map_structure(lambda *a: tf.stack(a), *[b[1] for b in train_batches])
  fn = _compiled(student, dln, validation_loss or sparse_cross_entropy, mode,
                 bool(validation_training))
  dtype = student.trainable_variables[0].dtype
  gradients, error = fn((xs, ys), tuple(validation_batch),
                        tf.constant(learning_rate, dtype))
  return list(gradients), error
