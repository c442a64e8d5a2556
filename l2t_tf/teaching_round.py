"""One teaching round: paper Algorithm 1, stages I-III, under a strategy.

Stage I+II  theta_0 -> theta_N by N SGD steps on L_phi0 while computing
            e_1 = e_val(theta_N) and de_1/dphi0 (one `hypergradient.unroll`);
            the updater (LSTM teacher) sets phi_1 = phi_0 + T(de_1/dphi0).
Stage III   theta_N -> theta_2N by N SGD steps on L_phi1 while computing
            e_2 and de_2/dphi_1; the teacher learns by one vector-Jacobian
            product through T (Eq. 8) and an Adam step.

Each stage is one `tf.function` (traced once per input shape; made by
`hypergradient.function`, i.e. without grappler's memory optimizer) that runs
the student's unroll in `strategy.run` on its shard of the batch and reduces
(MEAN) and applies the results in cross-replica context, so every replica's
student, DLN and teacher stay identical. Between stages, Python checks that
the hypergradient is finite; a NaN/Inf skips that update (and is counted).

`stage3="release"` restarts stage III from theta_0 on the stage-I batches, as
the authors' code does, instead of continuing from theta_N on new batches; a
round then takes N student steps (its input holds N batches, not 2N).

`guard=True` (ours, needs `stage3="release"`): both unrolls then start from
theta_0 on the same batches and are judged on the same validation batch, so
e_2 > e_1 means the new DLN phi_1 made this round worse. The round then keeps
phi_0 and stage I's student (the teacher still learns from de_2/dphi_1).
With `guard_min_properness=q` it also rejects a phi_1 whose
`loss_surface.properness` is below q, so the DLN stays a loss that raises
the true class and lowers the others over the whole input square, not only
where this student's predictions are now.

`fallback_to_reverse` switches a round built in unrolled mode to reverse mode
(the trainer calls it when the first rounds of a large student fail in
TensorFlow, issue 13).

Diagnostics returned per round (issue 12): `teacher_cosine`, the cosine
between the DLN step phi_1 - phi_0 and -de_1/dphi_0 (> 0: a descent step);
`dln_relative_change`, |phi - phi_init| / |phi_init| since the run began;
`e2_minus_e1` and `update_helped` (e_2 < e_1); `update_accepted`.
"""
import time

from absl import logging
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import dln_updaters
from l2t_tf import errors
from l2t_tf import hypergradient
from l2t_tf import loss_surface

STAGE3_MODES = ("paper", "release")
VALIDATION_BN_MODES = ("train", "inference")
MEAN = tf.distribute.ReduceOp.MEAN


def _shard(nest, axis):
  """This replica's slice of a global batch along `axis`."""
  ctx = tf.distribute.get_replica_context()
  replicas = ctx.num_replicas_in_sync
  if replicas == 1:
    return nest

  def one(t):
    shape = t.shape.as_list()
    if shape[axis] % replicas:
      raise errors.UserError(f"batch size {shape[axis]} is not divisible by the "
                       f"{replicas} replicas.")
    t = tf.reshape(t, shape[:axis] + [replicas, shape[axis] // replicas] +
                   shape[axis + 1:])
    return tf.gather(t, ctx.replica_id_in_sync_group, axis=axis)

  return tf.nest.map_structure(one, nest)


def _all_finite(tensors):
  return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


def _cosine(a, b):
  """cos(a, b) of two flat vectors; 0 if either is zero."""
  a, b = tf.cast(a, tf.float64), tf.cast(b, tf.float64)
  return tf.math.divide_no_nan(tf.reduce_sum(a * b), tf.norm(a) * tf.norm(b))


class StudentRunner:
  """Runs a Keras student functionally under a strategy and writes back."""

  def __init__(self, strategy, student, learning_rate):
    self.strategy, self.student = strategy, student
    self.learning_rate = learning_rate
    self.apply = hypergradient.stateless_apply(student)

  def weights(self):
    return ([v.value for v in self.student.trainable_variables],
            [v.value for v in self.student.non_trainable_variables])

  def assign(self, trainable, non_trainable):
    """Writes reduced per-replica weights back (cross-replica context)."""
    pairs = list(zip(self.student.trainable_variables, trainable)) + list(
        zip(self.student.non_trainable_variables, non_trainable))
    for var, value in pairs:
      var.assign(self.strategy.reduce(MEAN, value, axis=None))

  def plain_steps(self, loss_fn, batches, loss_layer=None):
    """N SGD steps on `loss_fn`; returns the mean loss (cross-replica).

    If `loss_layer` (a Keras layer computing the loss) has trainable
    parameters, they take the same SGD steps as the student.
    """
    loss_vars = list(loss_layer.trainable_variables) if loss_layer else []
    apply, num_student = self.apply, len(self.student.trainable_variables)
    if loss_vars:
      apply, loss_fn = self._with_loss_parameters(loss_layer, num_student)

    def replica_fn(batches):
      theta, state = self.weights()
      theta += [v.value for v in loss_vars]
      return hypergradient.sgd_steps(apply, theta, state, loss_fn,
                                     _shard(batches, 1), self.learning_rate)
    theta, state, loss = self.strategy.run(replica_fn, (batches,))
    self.assign(theta[:num_student], state)
    for var, value in zip(loss_vars, theta[num_student:]):
      var.assign(self.strategy.reduce(MEAN, value, axis=None))
    return self.strategy.reduce(MEAN, loss, axis=None)

  def _with_loss_parameters(self, loss_layer, num_student):
    """(apply, loss) over [theta, loss parameters] for joint SGD."""
    def apply(trainable, non_trainable, x, training):
      outputs, state = self.apply(trainable[:num_student], non_trainable, x,
                                  training)
      return (outputs, trainable[num_student:]), state

    def loss(y, outputs_and_parameters):
      outputs, parameters = outputs_and_parameters
      fixed = [v.value for v in loss_layer.non_trainable_variables]
      return loss_layer.stateless_call(parameters, fixed, y, outputs)[0]
    return apply, loss


class TeachingRound:
  """Stages I-III of Algorithm 1 for a task, student, DLN and updater."""

  def __init__(self, strategy, task, student, dln, updater, learning_rate,
               mode="unrolled", stage3="paper", baseline_student=None,
               baseline_only=False, validation_bn_mode="train",
               guard=False, guard_min_properness=None):
    if stage3 not in STAGE3_MODES:
      raise errors.UserError(f"stage3 must be one of {STAGE3_MODES}, got {stage3!r}.")
    if validation_bn_mode not in VALIDATION_BN_MODES:
      raise errors.UserError(
          f"validation_bn_mode must be one of {VALIDATION_BN_MODES}, got "
          f"{validation_bn_mode!r}.")
    if guard and (stage3 != "release" or not updater.learns_in_stage3):
      raise errors.UserError(
          "update_guard needs stage3 = 'release' and an updater that learns "
          "in stage III (the LSTM teacher): only then do e_1 and e_2 start "
          "from the same student on the same batches.")
    if mode not in hypergradient.MODES:
      raise errors.UserError(f"hypergradient_mode must be one of "
                       f"{hypergradient.MODES}, got {mode!r}.")
    self.strategy, self.task, self.dln, self.updater = (strategy, task, dln,
                                                        updater)
    self.mode, self.stage3, self.baseline_only = mode, stage3, baseline_only
    self.validation_training = validation_bn_mode == "train"
    self.guard = bool(guard)
    self.guard_min_properness = guard_min_properness
    if guard_min_properness is not None and not (
        guard and isinstance(dln, dln_lib.PairwiseDLN)):
      raise errors.UserError(
          "update_guard_min_properness needs update_guard = True and a "
          "PairwiseDLN (classification or segmentation).")
    #: Batches of N steps a round consumes (stage III reuses stage I's in
    #: the release's variant) and the student's SGD steps per round.
    self.stages = 1 if stage3 == "release" else 2
    self.student = StudentRunner(strategy, student, learning_rate)
    self.baseline = (StudentRunner(strategy, baseline_student, learning_rate)
                     if baseline_student is not None else None)
    self.trace_count = 0
    with strategy.scope():  # phi at the start of the run, for diagnostics.
      self.dln_initial = [tf.Variable(v, trainable=False,
                                      name=f"dln_initial_{i}")
                          for i, v in enumerate(dln.trainable_variables)]
    #: Why the round left unrolled mode (`fallback_to_reverse`), or None.
    self.fallback_reason = None
    self._discarded_traces = 0  # Traces of stages rebuilt by the fallback.
    # Functions running student steps in a while loop skip grappler's memory
    # optimizer (issue 13, see `hypergradient.function`).
    compile_loop = hypergradient.function
    self._compile_hyper_stages()
    self._apply = tf.function(self._apply_update)
    self._restore = tf.function(self._restore_round)
    self._learn = tf.function(self.updater.learn)
    self._plain = compile_loop(lambda b: self.student.plain_steps(
        self._train_loss, b))
    self._observe = compile_loop(self._observe_stage)
    if self.baseline is not None:
      self._baseline = compile_loop(lambda b: self.baseline.plain_steps(
          task.fixed_loss, b, task.fixed_loss_layer()))
    if baseline_only:  # Method "baseline": the student learns from the task's
      self._baseline_only = compile_loop(  # hand-designed loss only.
          lambda b: self.student.plain_steps(task.fixed_loss, b,
                                             task.fixed_loss_layer()))

  def _compile_hyper_stages(self):
    """(Re)builds stages I+II and III, the functions that depend on `mode`."""
    self._stage1 = hypergradient.function(lambda b, v: self._hyper_stage(
        b, v, write_back=(self.stage3 == "paper"), keep_weights=self.guard))
    self._stage3 = hypergradient.function(lambda b, v: self._hyper_stage(
        b, v, write_back=True))

  def fallback_to_reverse(self, reason):
    """Switches the hypergradient to reverse mode (Eq. 4-6, memory flat in N).

    For a student whose unrolled graph TensorFlow cannot run (issue 13): the
    caller catches the error, restores what the failed round changed and
    runs the round again. Stages I+II and III are rebuilt (a new trace);
    one warning says why.

    Args:
      reason: one line, the error that made unrolled mode fail.
    """
    if self.mode == "reverse":
      raise ValueError("the teaching round is already in reverse mode.")
    logging.warning("Hypergradient: unrolled mode failed (%s); continuing in "
                    "reverse mode (exact too, memory flat in N).", reason)
    self._discarded_traces += sum(
        f.experimental_get_tracing_count() for f in (self._stage1,
                                                     self._stage3))
    self.mode, self.fallback_reason = "reverse", reason
    self._compile_hyper_stages()

  def total_traces(self):
    """Traces of all compiled pieces so far (a round that traced is slow)."""
    functions = [getattr(self, name, None) for name in (
        "_stage1", "_stage3", "_apply", "_learn", "_plain", "_observe",
        "_baseline", "_baseline_only", "_restore")]
    return self._discarded_traces + sum(
        f.experimental_get_tracing_count() for f in functions if f)

  def _train_loss(self, y, outputs):
    return self.task.student_loss(self.dln, y, outputs)

  def steps_per_round(self, unroll_length):
    """SGD steps the (taught) student takes in one round."""
    return self.stages * int(unroll_length)

  def _hyper_stage(self, batches, validation_batch, write_back,
                   keep_weights=False):
    """One unroll with hypergradient; cross-replica. Traced once per shape."""
    self.trace_count += 1  # Python side effect: counts traces, not calls.

    def replica_fn(batches, validation_batch):
      theta, state = self.student.weights()
      result = hypergradient.unroll(
          self.student.apply, theta, state, self._train_loss,
          self.task.validation_error, _shard(batches, 1),
          _shard(validation_batch, 0), self.student.learning_rate,
          self.dln.trainable_variables, self.mode, self.validation_training)
      return result._asdict()

    result = self.strategy.run(replica_fn, (batches, validation_batch))
    if write_back:
      self.student.assign(result["trainable"], result["non_trainable"])
    reduce = lambda t: self.strategy.reduce(MEAN, t, axis=None)
    gradients = [reduce(g) for g in result["gradients"]]
    weights = {}
    if keep_weights:  # The guard may return to stage I's student.
      weights = {"trainable": [reduce(t) for t in result["trainable"]],
                 "non_trainable": [reduce(t) for t in result["non_trainable"]]}
    return {"gradients": gradients, **weights,
            "finite": _all_finite(gradients),
            "hypergradient_norm": tf.linalg.global_norm(gradients),
            "validation_error": reduce(result["validation_error"]),
            "train_loss": reduce(result["train_loss"])}

  def _observe_stage(self, batches, validation_batch):
    """Stage I without hypergradient: N plain steps, then e_1 and the metric."""
    train_loss = self.student.plain_steps(self._train_loss, batches)

    def replica_fn(validation_batch):
      x, y = _shard(validation_batch, 0)
      theta, state = self.student.weights()
      outputs, _ = self.student.apply(theta, state, x,
                                      self.validation_training)
      return (self.task.validation_error(y, outputs),
              self.task.validation_metric(y, outputs))
    error, metric = self.strategy.run(replica_fn, (validation_batch,))
    reduce = lambda t: self.strategy.reduce(MEAN, t, axis=None)
    return {"validation_error": reduce(error), "train_loss": train_loss,
            "validation_metric": reduce(metric)}

  def _apply_update(self, gradients, observation):
    """The updater's step on phi, plus the step's diagnostics."""
    variables = self.dln.trainable_variables
    before = [tf.identity(v) for v in variables]
    context, metrics = self.updater.apply(variables, gradients, observation)
    flat = dln_updaters.flatten
    step = flat([tf.convert_to_tensor(v) for v in variables]) - flat(before)
    metrics = dict(metrics, dln_step_norm=tf.norm(step))
    if gradients is not None:
      metrics["teacher_cosine"] = _cosine(step, -flat(gradients))
    return (context, before), metrics

  def _restore_round(self, dln_values, trainable, non_trainable):
    """The guard's rejection: phi_0 and stage I's student back."""
    for var, value in zip(self.dln.trainable_variables, dln_values):
      var.assign(value)
    self.student.assign(trainable, non_trainable)

  def dln_relative_change(self):
    """|phi - phi_init| / |phi_init| over all DLN coordinates."""
    flat = dln_updaters.flatten
    initial = flat([tf.convert_to_tensor(v) for v in self.dln_initial])
    now = flat([tf.convert_to_tensor(v) for v in self.dln.trainable_variables])
    return float(tf.math.divide_no_nan(tf.norm(now - initial),
                                       tf.norm(initial)))

  def __call__(self, train_batches, validation_batch, progress=0.0,
               student_steps=0):
    """Runs one round. train_batches: (xs, ys) [stages, N, B, ...]; metrics.

    `progress` (rounds done / rounds planned) and `student_steps` (SGD steps
    the student took before this round) are passed on to the updater.
    """
    start = time.perf_counter()
    first = tf.nest.map_structure(lambda t: t[0], train_batches)
    second = (first if self.stages == 1 else
              tf.nest.map_structure(lambda t: t[1], train_batches))
    if self.baseline_only:
      losses = [float(self._baseline_only(b))
                for b in (first, second)[:self.stages]]
      return {"train_loss": sum(losses) / len(losses), "skipped_updates": 0,
              "round_time_s": time.perf_counter() - start}
    metrics, skipped = {}, 0
    if self.updater.needs_hypergradient:
      s1 = self._stage1(first, validation_batch)
      metrics["hypergradient_norm"] = s1["hypergradient_norm"]
      updated = bool(s1["finite"])
    else:
      s1, updated = self._observe(first, validation_batch), True
      s1["gradients"] = None
      metrics["validation_metric"] = s1["validation_metric"]
    metrics.update(e1=s1["validation_error"], train_loss=s1["train_loss"])
    if updated:
      observation = {k: s1[k] for k in s1 if k not in ("gradients", "finite",
                                                        "hypergradient_norm")}
      observation["progress"] = tf.constant(float(progress))
      n = tf.nest.flatten(first)[0].shape[0]  # Stage I's steps are done.
      observation["student_steps"] = tf.constant(student_steps + n, tf.int64)
      (context, dln_before), update_metrics = self._apply(s1["gradients"],
                                                          observation)
      metrics.update(update_metrics)
    else:
      skipped += 1
    if updated and self.updater.learns_in_stage3:
      s3 = self._stage3(second, validation_batch)
      e1, e2 = float(s1["validation_error"]), float(s3["validation_error"])
      metrics.update(e2=e2, e2_minus_e1=e2 - e1, update_helped=float(e2 < e1))
      if bool(s3["finite"]):
        metrics.update(self._learn(context, s3["gradients"]))
      else:
        skipped += 1
      accepted = not self.guard or e2 <= e1
      if self.guard_min_properness is not None:
        metrics["dln_properness"] = loss_surface.properness(self.dln)
        accepted = accepted and (metrics["dln_properness"] >=
                                 self.guard_min_properness)
      if not accepted:
        self._restore(dln_before, s1["trainable"], s1["non_trainable"])
      metrics["update_accepted"] = float(accepted)
    else:
      self._plain(second)
    if self.baseline is not None:
      self._baseline(first)
      if self.stage3 == "paper":
        self._baseline(second)
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics["dln_relative_change"] = self.dln_relative_change()
    metrics["skipped_updates"] = skipped
    metrics["round_time_s"] = time.perf_counter() - start
    return metrics
