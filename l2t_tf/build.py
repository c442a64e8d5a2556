"""Builds a run from its settings: the one place that reads the `Trainer` binding.

`build(task, model_dir, strategy, round=..., **settings)` reads the
settings (`Settings`, bound in gin as `Trainer.<name>`, so every gin file
and `teach(**settings)` keep their names), builds the experiment (the round
and its models, `experiment.build_experiment`), the data, the evaluator, the
checkpoints, the history and the actions, and hands them, built, to the loop
(`trainer.Trainer`). The method is the round, bound as `build.round =
@L2TRound` (the default) or passed. `main` (through `train_eval`), the
Python API (`l2t_tf.teach`) and the tools all build here, so they cannot
wire a method differently.

    run = build(task, model_dir, strategy, round=rounds.L2TRound)
    results = run.run()
"""
import contextlib
import dataclasses
from typing import Any, Optional

import gin

from l2t_tf import actions as actions_lib
from l2t_tf import checkpointing
from l2t_tf import checks
from l2t_tf import errors
from l2t_tf import evaluation
from l2t_tf import experiment as experiment_lib
from l2t_tf import history as history_lib
from l2t_tf import trainer as trainer_lib
from l2t_tf.data import epochs

# Settings that are integers: the least value of each.
_INTEGERS = {"unroll_length": 1, "teacher_epochs": 1, "batch_size": 1,
             "validation_batch_size": 1, "eval_batch_size": 1,
             "checkpoint_every_rounds": 1, "rounds_per_validation_batch": 1}
_OPTIONAL_INTEGERS = {"rounds_per_epoch": 1, "max_rounds": 1}  # None: unset.
_FLAGS = ("train_comparison", "progress", "dln_warm_start")


@gin.configurable("Trainer", module="l2t_tf.trainer")
@dataclasses.dataclass(frozen=True)
class Settings:
  """A run's settings, bound in gin as `Trainer.<name>`.

  The loop's and the data's settings; the round's options
  (`updater`, `hypergradient_mode`, `stage3`, `validation_bn_mode`,
  `update_guard`, `update_guard_min_properness`) and `method` are the
  older way to choose and configure the round (now `build.round =
  @L2TRound`, `L2TRound.stage3 = 'release'`): set here (bound, or passed
  to `build`), an option overrides the round's own binding
  (`experiment.resolve_round`); unset, the round's holds.
  """
  unroll_length: int = 25
  teacher_epochs: int = 10
  validation_ratio: float = 0.5
  batch_size: int = 25
  validation_batch_size: int = 100
  student_learning_rate: float = 0.1
  hypergradient_mode: Optional[str] = None
  stage3: Optional[str] = None
  updater: Any = None
  train_comparison: bool = True
  rounds_per_epoch: Optional[int] = None
  checkpoint_every_rounds: int = 1
  seed: int = 0
  max_rounds: Optional[int] = None
  eval_batch_size: int = 500
  progress: bool = True
  method: Optional[str] = None
  rounds_per_validation_batch: int = 1
  validation_bn_mode: Optional[str] = None
  update_guard: Optional[bool] = None
  dln_warm_start: bool = False
  update_guard_min_properness: Optional[float] = None
  max_abs_loss: float = 1e6
  heldout_ratio: float = 0.0

  def check(self, num_replicas):
    """Types and ranges (`checks`); a UserError names the binding.

    A float unroll length or a string flag is a mistake, not a value to
    round or to read as True. The round checks its own options.
    """
    name = "Trainer.{}".format
    for key, minimum in _INTEGERS.items():
      checks.integer(name(key), getattr(self, key), minimum)
    for key, minimum in _OPTIONAL_INTEGERS.items():
      checks.integer(name(key), getattr(self, key), minimum, optional=True)
    for key in _FLAGS:
      checks.boolean(name(key), getattr(self, key))
    checks.integer(name("seed"), self.seed, 0, maximum=2**32 - 1)
    checks.number(name("validation_ratio"), self.validation_ratio, 0, 1)
    checks.number(name("heldout_ratio"), self.heldout_ratio, 0, 1,
                  closed=(True, False))
    checks.number(name("student_learning_rate"), self.student_learning_rate,
                  0)
    checks.number(name("max_abs_loss"), self.max_abs_loss, 0)
    for key in ("batch_size", "validation_batch_size"):
      if getattr(self, key) % num_replicas:
        raise errors.UserError(f"{name(key)} = {getattr(self, key)} must be "
                               f"divisible by the {num_replicas} replicas.")

  def round_options(self, passed):
    """The round's options set on `Trainer`: in `passed` or bound in gin."""
    return {k: getattr(self, k) for k in experiment_lib.ROUND_OPTIONS
            if k in passed or _bound(f"Trainer.{k}")}


def _bound(parameter):
  try:
    gin.query_parameter(parameter)
  except ValueError:
    return False
  return True


#: The settings' names, in order (`teach`'s keyword arguments).
SETTING_NAMES = tuple(f.name for f in dataclasses.fields(Settings))


@dataclasses.dataclass
class Run:
  """A built run: the loop and its parts. `run()` teaches (and closes)."""
  trainer: trainer_lib.Trainer
  experiment: experiment_lib.Experiment
  data: epochs.EpochData
  evaluator: evaluation.Evaluator
  settings: Settings

  def run(self):
    """Teaches to the end (or `max_rounds`); the results dict."""
    with contextlib.ExitStack() as stack:  # Actions that hold a resource.
      for action in self.trainer.actions:
        if isinstance(action, contextlib.AbstractContextManager):
          stack.enter_context(action)
      return self.trainer.run()

  def restore(self):
    return self.trainer.restore()

  # Read-only views of the parts (for tools and tests).
  round = property(lambda self: self.trainer.round)
  model_dir = property(lambda self: self.trainer.model_dir)
  counters = property(lambda self: self.trainer.counters)
  checkpoints = property(lambda self: self.trainer.checkpoints)
  checkpoint = property(lambda self: self.experiment.checkpoint)
  checkpoint_dir = property(lambda self: self.trainer.checkpoints.directory)
  actions = property(lambda self: self.trainer.actions)
  task = property(lambda self: self.experiment.task)
  strategy = property(lambda self: self.experiment.strategy)
  student = property(lambda self: self.experiment.student)
  comparison_student = property(
      lambda self: self.experiment.comparison_student)
  dln = property(lambda self: self.experiment.dln)
  updater = property(lambda self: self.experiment.updater)
  test_data = property(lambda self: self.data.test_data)
  heldout_data = property(lambda self: self.data.heldout_data)
  train_size = property(lambda self: self.data.train_size)
  rounds_done = property(lambda self: self.trainer.counters.rounds_done)

  def epoch_rounds(self, epoch):
    return self.data.epoch(epoch)

  def checkpoint_variables(self):
    return self.experiment.checkpoint_variables()


@gin.configurable(allowlist=["round"])
def build(task, model_dir, strategy, round=None, actions=None,  # pylint: disable=redefined-builtin
          extra_actions=(), **settings):
  """The `Run` of `round` on `task` (see the module).

  Args:
    task: a `tasks.base.Task`.
    model_dir: the run's directory (checkpoints, summaries, history).
    strategy: a `tf.distribute.Strategy`.
    round: the method, a round class of `rounds` (its options bound in
      gin), bound as `build.round = @L2TRound`; None: the one the older
      `Trainer` bindings choose (L2TRound by default).
    actions: callables of each round's and epoch's output (`actions`);
      None: `actions.default_actions`.
    extra_actions: more actions, run after those.
    **settings: `Settings` fields; the rest come from gin (`Trainer.*`).
  """
  unknown = sorted(set(settings) - set(SETTING_NAMES))
  if unknown:
    raise errors.UserError(f"unknown setting {unknown[0]!r}; the settings "
                           f"are {', '.join(SETTING_NAMES)}.")
  s = Settings(**settings)
  s.check(strategy.num_replicas_in_sync)
  experiment = experiment_lib.build_experiment(
      task, strategy, round, learning_rate=s.student_learning_rate,
      train_comparison=s.train_comparison, dln_warm_start=s.dln_warm_start,
      seed=s.seed, method=s.method, **s.round_options(settings))
  round_ = experiment.round
  data = epochs.EpochData(
      task, stages=round_.stages, unroll_length=s.unroll_length,
      batch_size=s.batch_size, validation_batch_size=s.validation_batch_size,
      validation_ratio=s.validation_ratio, rounds_per_epoch=s.rounds_per_epoch,
      rounds_per_validation_batch=s.rounds_per_validation_batch,
      heldout_ratio=s.heldout_ratio, eval_batch_size=s.eval_batch_size,
      seed=s.seed)
  evaluator = evaluation.Evaluator(task, round_.students(), data.test_data,
                                   data.heldout_data)
  checkpoints = checkpointing.RunCheckpoints(experiment.checkpoint,
                                             model_dir, strategy)
  if actions is None:
    actions = actions_lib.default_actions(round_, model_dir,
                                          checkpoints.is_chief, s.progress)
  trainer = trainer_lib.Trainer(
      round=round_, data=data, evaluator=evaluator, checkpoints=checkpoints,
      history=history_lib.History(model_dir), counters=experiment.counters,
      actions=list(actions) + list(extra_actions), strategy=strategy,
      model_dir=model_dir, teacher_epochs=s.teacher_epochs,
      max_rounds=s.max_rounds,
      checkpoint_every_rounds=s.checkpoint_every_rounds,
      max_abs_loss=s.max_abs_loss)
  return Run(trainer=trainer, experiment=experiment, data=data,
             evaluator=evaluator, settings=s)
