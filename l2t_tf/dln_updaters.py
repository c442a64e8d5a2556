"""How the DLN is updated from its hypergradient (paper Eq. 3 and Table 6).

A `DLNUpdater` turns the hypergradient de_1/dphi of stage II into an update of
the DLN variables. The paper's updater is the LSTM teacher, which then learns
in stage III from de_2/dphi_1 (Eq. 8); the Table 6 ablation replaces it with a
plain optimiser (Adam, SGD, RMSProp) applied to phi directly.

All methods run in cross-replica context (inside a `tf.function`, outside
`strategy.run`) on hypergradients that are already reduced over replicas, so
every copy of a mirrored variable receives the same update.
"""
import functools
import math

import gin
import keras
import tensorflow as tf

from l2t_tf import checkpointing
from l2t_tf import checks
from l2t_tf import teacher as teacher_lib

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def make_optimizer(name, learning_rate, configurable="optimizer"):
  """A Keras optimizer by name: 'adam', 'sgd' or 'rmsprop'.

  Args:
    name: the optimizer's name, a key of OPTIMIZERS.
    learning_rate: a number > 0.
    configurable: whose `optimizer` and `learning_rate` they are, to name
      the binding in an error (e.g. 'TeacherUpdater').
  """
  checks.one_of(f"{configurable}.optimizer", name, sorted(OPTIMIZERS))
  learning_rate = checks.number(f"{configurable}.learning_rate",
                                learning_rate, 0)
  return OPTIMIZERS[name](learning_rate=learning_rate)


def flatten(tensors):
  """[t_1, ..., t_k] -> one [P] vector."""
  return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


def unflatten(vector, like):
  """Inverse of `flatten` for tensors shaped like `like`."""
  sizes = [math.prod(v.shape) for v in like]
  return [tf.reshape(part, tuple(v.shape))
          for part, v in zip(tf.split(vector, sizes), like)]


class DLNUpdater(tf.Module):
  """Interface: changes the DLN between the student's stages.

  The round is the method (`rounds`); an updater is one of its parts, of
  the interface that round needs: a `HypergradientUpdater` gets de_1/dphi
  after stage I (`rounds.HypergradientRound`); a `TeachingUpdater` also
  learns from de_2/dphi_1 after stage III (`rounds.L2TRound`, the paper's
  method); a `ControllerUpdater` sees no hypergradient, only the round's
  observation (`rounds.ControllerRound`, e.g. ALA). `default_round` names
  the round that runs an updater bound the old way (`Trainer.updater`).

  The observation is a dict of scalar tensors about the student after stage
  I: "validation_error" (e_1), "train_loss" (mean stage-I loss), "progress"
  (rounds done / rounds planned, in [0, 1]), "student_steps" (int64, SGD
  steps the student has taken, stage I's included) and, for a controller,
  "validation_metric" (the task's error metric, e.g. the 0-1 error of
  classification). Updaters that do not need it ignore it.

  Everything an updater learns lives in variables that a `tf.Module` tracks
  by name (Keras layers' weights through `checkpointing.layer_variables`),
  so the trainer's checkpoint holds the updater itself.
  """

  #: The name of the round in `rounds` that runs this kind of updater.
  default_round = None
  #: A Keras optimizer whose variables the updater holds (or None).
  optimizer = None

  def build(self, dln_variables):
    """Creates state (slots, LSTM state); call inside the strategy scope.

    The updater's dtype is the DLN's (`dln_variables[0].dtype`).
    """
    raise NotImplementedError

  def optimizer_variables(self):
    """The optimizer's variables (a Keras optimizer is no `tf.Module`)."""
    return [] if self.optimizer is None else list(self.optimizer.variables)


class HypergradientUpdater(DLNUpdater):
  """Updates phi from the hypergradient de_1/dphi of stage I+II."""
  default_round = "HypergradientRound"

  def apply(self, dln_variables, hypergradients, observation=None):
    """phi <- update(phi, de_1/dphi). Returns (context, metrics dict)."""
    raise NotImplementedError


class TeachingUpdater(HypergradientUpdater):
  """A hypergradient updater that learns from stage III (Eq. 8)."""
  default_round = "L2TRound"

  def learn(self, context, hypergradients):
    """Learns from de_2/dphi_1, `context` from `apply`. Returns metrics."""
    raise NotImplementedError


class ControllerUpdater(DLNUpdater):
  """Updates phi from the round's observation only (no hypergradient)."""
  default_round = "ControllerRound"

  def apply(self, dln_variables, observation):
    """phi <- update(phi, observation). Returns (context, metrics dict)."""
    raise NotImplementedError


@gin.configurable
class OptimizerUpdater(HypergradientUpdater):
  """phi <- optimiser step on de_1/dphi (Table 6: Adam, SGD, RMSProp)."""

  def __init__(self, optimizer="adam", learning_rate=1e-3):
    super().__init__(name=f"{optimizer}_updater")
    self.optimizer = make_optimizer(optimizer, learning_rate,
                                    "OptimizerUpdater")

  def build(self, dln_variables):
    self.optimizer.build(dln_variables)

  def apply(self, dln_variables, hypergradients, observation=None):
    del observation
    self.optimizer.apply(hypergradients, dln_variables)
    return (), {}


@gin.configurable
class TeacherUpdater(TeachingUpdater):
  """The paper's updater: phi_1 = phi_0 + T_varphi(de_1/dphi) (Eq. 3).

  Stage III: varphi <- Adam(de_2/dvarphi) with
  de_2/dvarphi = (de_2/dphi_1)^T dT_varphi(g)/dvarphi (Eq. 8), one
  vector-Jacobian product through the teacher, the hypergradient g entering as
  data. The LSTM state is kept in variables (carried across rounds, gradient
  stopped) so that it is checkpointed with the rest; the teacher's weights
  are held by name (`teacher_weights`). The teacher is made in `build`, in
  the dtype of the DLN variables (the task's).
  """

  def __init__(self, optimizer="adam", learning_rate=1e-3,
               hidden_units=(64, 64, 64), preprocess_factor=10.0,
               output_scale=1e-3, initialization="release",
               zero_last_cell=False, descent_skip=False):
    super().__init__(name="teacher_updater")
    name = "TeacherUpdater.{}".format
    self._make_teacher = functools.partial(
        teacher_lib.LSTMTeacher,
        hidden_units=checks.integers(name("hidden_units"), hidden_units),
        preprocess_factor=checks.number(name("preprocess_factor"),
                                        preprocess_factor, 0),
        output_scale=checks.number(name("output_scale"), output_scale, 0),
        initialization=checks.one_of(name("initialization"), initialization,
                                     teacher_lib.INITIALIZATIONS),
        zero_last_cell=checks.boolean(name("zero_last_cell"), zero_last_cell),
        descent_skip=checks.boolean(name("descent_skip"), descent_skip))
    self.optimizer = make_optimizer(optimizer, learning_rate, "TeacherUpdater")
    self.teacher = self.state = None

  def build(self, dln_variables):
    self.teacher = self._make_teacher(
        dtype=tf.as_dtype(dln_variables[0].dtype).name)
    num = sum(math.prod(v.shape) for v in dln_variables)
    self.state = [[tf.Variable(t, trainable=False, name=f"lstm_state_{i}")
                   for t in pair]
                  for i, pair in enumerate(self.teacher.initial_state(num))]
    self.optimizer.build(self.teacher.trainable_variables)
    self.teacher_weights = checkpointing.layer_variables(self.teacher)

  def _read_state(self):
    return [[tf.convert_to_tensor(v) for v in pair] for pair in self.state]

  def apply(self, dln_variables, hypergradients, observation=None):
    del observation
    gradient = tf.stop_gradient(flatten(hypergradients))
    old_state = self._read_state()
    step, new_state = self.teacher(gradient, old_state)
    for pair_vars, pair in zip(self.state, new_state):
      for var, value in zip(pair_vars, pair):
        var.assign(tf.stop_gradient(value))
    for var, delta in zip(dln_variables, unflatten(step, dln_variables)):
      var.assign_add(tf.cast(delta, var.dtype))
    return (gradient, old_state), {"teacher_output_norm": tf.norm(step)}

  def learn(self, context, hypergradients):
    gradient, old_state = context
    variables = self.teacher.trainable_variables
    with tf.GradientTape() as tape:
      step, _ = self.teacher(gradient, old_state)
    cotangent = tf.cast(flatten(hypergradients), step.dtype)
    grads = tape.gradient(step, variables, output_gradients=cotangent)
    self.optimizer.apply(grads, variables)
    return {"teacher_gradient_norm": tf.linalg.global_norm(grads)}
