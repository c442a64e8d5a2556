"""The teaching loop: teacher epochs of rounds, evaluated, with actions.

Paper Algorithm 1 over `teacher_epochs` epochs. At every epoch the training
set is split again into the student's training part and the teacher's
validation part (`data.splits`), unless the task has a fixed validation set
(`Task.fixed_validation_split`: the validation part of every epoch, the
student training on all of the training set); an epoch has one round per
validation batch
(as the authors' release; `rounds_per_validation_batch` rounds per batch if
set, `rounds_per_epoch` rounds if set), each round consuming `stages` blocks
of N training batches (`rounds.base`).

`experiment.build_experiment` makes the student, the DLN, the updater, the
comparison student (the same initial weights trained on the task's fixed
loss on exactly the same batches, so that every run carries its own
comparison), the round and the checkpoint; the trainer keeps only the loop:
resume, rounds, the evaluation at the end of each teacher epoch, results.
Its side effects are `actions` (progress bar, TensorBoard summaries,
history, the DLN surface, periodic checkpoints).

Everything a run has learned lives in one `tf.train.Checkpoint` (students,
DLN, teacher, its LSTM state, optimiser slots, the position in the data and
the counters, each by name) written every `checkpoint_every_rounds` rounds
(default 1, so a crash loses at most the round it happened in; raise it for
large students), at the end of every teacher epoch and when the run is
interrupted (Ctrl-C, SIGTERM). The data position is exact: a resumed run
rebuilds the epoch's data from the seed and skips the rounds already done,
so it ends where an uninterrupted run ends.
"""
import functools
import os
import signal
import tempfile
import time

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from l2t_tf import actions as actions_lib
from l2t_tf import checkpointing
from l2t_tf import checks
from l2t_tf import dln as dln_lib
from l2t_tf import dln_updaters
from l2t_tf import errors
from l2t_tf import experiment as experiment_lib
from l2t_tf import loss_surface
from l2t_tf import strategy as strategy_lib
from l2t_tf.data import splits

METHODS = experiment_lib.METHODS
#: What reading a damaged checkpoint raises (a truncated data file gives
#: IndexError "Read less bytes than requested" from the reader).
UNREADABLE_CHECKPOINT = (IndexError, tf.errors.DataLossError,
                         tf.errors.OutOfRangeError, tf.errors.NotFoundError)
#: What writing to a full, read-only or vanished model_dir raises.
WRITE_ERRORS = (tf.errors.PermissionDeniedError,
                tf.errors.ResourceExhaustedError,
                tf.errors.FailedPreconditionError, tf.errors.UnknownError,
                tf.errors.NotFoundError, OSError)


class Diverged(errors.UserError):
  """A student's loss or weights became non-finite or exploded."""


def _all_finite(variables):
  return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v))
                        for v in variables
                        if tf.as_dtype(v.dtype).is_floating])


class Interrupted(Exception):
  """Ctrl-C or SIGTERM, turned into an exception so the loop can save and exit."""


def _teaching_summary(rounds):
  """Fractions of rounds whose update helped / was kept, mean cosine."""
  summary = {}
  for key, name in (("update_helped", "fraction_updates_helped"),
                    ("update_accepted", "fraction_updates_accepted"),
                    ("teacher_cosine", "mean_teacher_cosine")):
    values = [r[key] for r in rounds if key in r]
    if values:
      summary[name] = float(np.mean(values))
  return summary


def _first_sentence(error):
  """The first sentence of a (long, one-line) restore error."""
  text = (str(error).strip().splitlines() or [""])[0]
  return text.split(". Showing")[0].split(" when attempting")[0][:300]


# Trainer arguments that are integers: the least value of each.
_INTEGERS = {"unroll_length": 1, "teacher_epochs": 1, "batch_size": 1,
             "validation_batch_size": 1, "eval_batch_size": 1,
             "checkpoint_every_rounds": 1, "rounds_per_validation_batch": 1}
_OPTIONAL_INTEGERS = {"rounds_per_epoch": 1, "max_rounds": 1}  # None: unset.
_FLAGS = ("train_comparison", "progress", "update_guard", "dln_warm_start")


def _validate(arguments, num_replicas):
  """Checks the Trainer's `arguments` (a dict); a UserError names the binding.

  Types and ranges (`checks`): a float unroll length or a string flag is a
  mistake, not a value to round or to read as True. The options of a
  method, a round or an updater are checked where they are used.
  """
  name = "Trainer.{}".format
  for key, minimum in _INTEGERS.items():
    checks.integer(name(key), arguments[key], minimum)
  for key, minimum in _OPTIONAL_INTEGERS.items():
    checks.integer(name(key), arguments[key], minimum, optional=True)
  for key in _FLAGS:
    checks.boolean(name(key), arguments[key])
  for key, choices in experiment_lib.CHOICES.items():
    checks.one_of(name(key), arguments[key], choices)
  checks.integer(name("seed"), arguments["seed"], 0, maximum=2**32 - 1)
  checks.number(name("validation_ratio"), arguments["validation_ratio"], 0, 1)
  checks.number(name("heldout_ratio"), arguments["heldout_ratio"], 0, 1,
                closed=(True, False))
  checks.number(name("student_learning_rate"),
                arguments["student_learning_rate"], 0)
  checks.number(name("max_abs_loss"), arguments["max_abs_loss"], 0)
  checks.number(name("update_guard_min_properness"),
                arguments["update_guard_min_properness"], 0, 1,
                closed=(True, True), optional=True)
  for key in ("batch_size", "validation_batch_size"):
    if arguments[key] % num_replicas:
      raise errors.UserError(f"{name(key)} = {arguments[key]} must be "
                             f"divisible by the {num_replicas} replicas.")


@gin.configurable(denylist=["task", "model_dir", "strategy"])
class Trainer:
  """Runs a method on a task: build, resume, teach, evaluate."""

  def __init__(self, task, model_dir, strategy, unroll_length=25,
               teacher_epochs=10, validation_ratio=0.5, batch_size=25,
               validation_batch_size=100, student_learning_rate=0.1,
               hypergradient_mode="unrolled", stage3="paper",
               updater=dln_updaters.TeacherUpdater, train_comparison=True,
               rounds_per_epoch=None, checkpoint_every_rounds=1, seed=0,
               max_rounds=None, eval_batch_size=500, progress=True,
               method="l2t_dln", rounds_per_validation_batch=1,
               validation_bn_mode="train", update_guard=False,
               dln_warm_start=False, update_guard_min_properness=None,
               max_abs_loss=1e6, heldout_ratio=0.0):
    _validate(dict(locals()), strategy.num_replicas_in_sync)  # Arguments only.
    self.task, self.model_dir, self.strategy = task, model_dir, strategy
    self.unroll_length, self.teacher_epochs = int(unroll_length), teacher_epochs
    self.validation_ratio, self.seed = float(validation_ratio), int(seed)
    self.batch_size, self.validation_batch_size = batch_size, validation_batch_size
    self.rounds_per_epoch, self.max_rounds = rounds_per_epoch, max_rounds
    self.rounds_per_validation_batch = int(rounds_per_validation_batch)
    self.checkpoint_every_rounds = checkpoint_every_rounds
    self.eval_batch_size, self.progress = eval_batch_size, progress
    self.learning_rate, self.max_abs_loss = student_learning_rate, max_abs_loss
    self.train_data, self.train_size = task.training_set()
    self.test_data = task.test_batches(eval_batch_size)
    self.heldout_data = self._hold_out(float(heldout_ratio))
    self.fixed_validation = self._fixed_validation()
    self.experiment = experiment_lib.build_experiment(
        task, strategy, method=method, updater=updater,
        train_comparison=train_comparison,
        learning_rate=student_learning_rate,
        hypergradient_mode=hypergradient_mode, stage3=stage3,
        validation_bn_mode=validation_bn_mode, update_guard=update_guard,
        update_guard_min_properness=update_guard_min_properness,
        dln_warm_start=dln_warm_start, seed=seed)
    exp = self.experiment
    self.method, self.round, self.counters = exp.method, exp.round, exp.counters
    self.student, self.dln, self.updater = exp.student, exp.dln, exp.updater
    self.comparison_student, self.checkpoint = (exp.comparison_student,
                                                exp.checkpoint)
    # Multi-worker: every worker saves (a collective), the chief into
    # model_dir, the others into a temporary directory deleted after saving.
    self.is_chief = strategy_lib.is_chief(strategy)
    self.multi_worker = strategy_lib.is_multi_worker(strategy)
    self.checkpoint_dir = os.path.join(self.model_dir, "checkpoints")
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, self.checkpoint_dir if self.is_chief else
        self._temporary_dir(), max_to_keep=3)
    self._finite = {
        name: tf.function(functools.partial(_all_finite, model.variables))
        for name, model in (("student", self.student),
                            ("comparison student", self.comparison_student))
        if model is not None}
    self.history_action = actions_lib.History(model_dir)
    self.history = self.history_action.data
    self.actions = actions_lib.default_actions(
        exp, model_dir, self.is_chief, self.history_action, progress,
        checkpoint_every_rounds)

  # The counters (`experiment.Counters`), read-only attributes.
  epoch = property(lambda self: self.counters.epoch)
  round_in_epoch = property(lambda self: self.counters.round_in_epoch)
  rounds_done = property(lambda self: self.counters.rounds_done)
  student_steps = property(lambda self: self.counters.student_steps)
  skipped_updates = property(lambda self: self.counters.skipped_updates)

  def _temporary_dir(self):
    """Where a non-chief worker saves (deleted after each save)."""
    index = strategy_lib.worker_index(self.strategy)
    return os.path.join(tempfile.gettempdir(),
                        f"l2t_worker{index}_{os.getpid()}")

  def checkpoint_variables(self):
    """Every variable the checkpoint holds."""
    return self.experiment.checkpoint_variables()

  # ---- data -------------------------------------------------------------
  def _hold_out(self, ratio):
    """Sets aside the held-out selection split (issue 16); its batches.

    With `heldout_ratio` > 0 a fixed part of the training set
    (`splits.holdout`) is removed before the epochs' train/validation
    splits and evaluated with the test set (metrics `heldout_*`), so that a
    setting can be chosen without the test set. None at 0 (the default).
    """
    if not ratio:
      return None
    self.train_data, heldout, self.train_size, n_heldout = splits.holdout(
        self.train_data, self.train_size, ratio)
    if not n_heldout:
      raise errors.UserError(
          f"Trainer.heldout_ratio = {ratio:g} holds out no example of the "
          f"{self.train_size}; raise it or set it to 0.")
    return self.task.heldout_batches(heldout, self.eval_batch_size)

  def _fixed_validation(self):
    """The task's fixed validation (dataset, size), checked; or None."""
    fixed = self.task.fixed_validation_split()
    if fixed is not None and fixed[1] < self.validation_batch_size:
      raise errors.UserError(
          f"the fixed validation set (validation_data) has {fixed[1]} "
          f"examples, fewer than Trainer.validation_batch_size = "
          f"{self.validation_batch_size}: give more or lower "
          f"validation_batch_size.")
    return fixed

  def epoch_rounds(self, epoch):
    """(dataset of rounds for `epoch`, number of rounds in it).

    The validation part is the task's fixed one if it has one (the student
    then trains on the whole training set, less any held-out split), else
    drawn again for `epoch` (`splits.split`).
    """
    if self.fixed_validation is None:
      train, val, n_train, n_val = splits.split(
          self.train_data, self.train_size, self.validation_ratio, self.seed,
          epoch)
      leaves = f"validation_ratio={self.validation_ratio} leaves"
    else:
      (val, n_val), train, n_train = (self.fixed_validation, self.train_data,
                                      self.train_size)
      leaves = "the fixed validation set leaves"
    if n_train < self.batch_size or n_val < self.validation_batch_size:
      raise errors.UserError(
          f"{leaves} {n_train} training and {n_val} validation examples; "
          f"need at least batch_size={self.batch_size} and "
          f"validation_batch_size={self.validation_batch_size}.")
    rounds = (n_val // self.validation_batch_size *
              self.rounds_per_validation_batch)
    if self.rounds_per_epoch:  # More than n_val // Bv reuses validation
      rounds = int(self.rounds_per_epoch)  # batches (see round_batches).
    data = splits.round_batches(
        train, val, self.unroll_length, self.batch_size,
        self.validation_batch_size, self.seed, epoch, self.task.shuffle_buffer,
        self.task.preprocess_train, self.task.preprocess_eval,
        self.rounds_per_validation_batch, stages=self.round.stages)
    return data.take(rounds), rounds

  # ---- checkpoints ------------------------------------------------------
  def _checkpoint_paths(self):
    """The chief's checkpoints, newest first."""
    state = tf.train.get_checkpoint_state(self.checkpoint_dir)
    if state is None:
      return []
    # get_checkpoint_state has joined relative paths to checkpoint_dir
    # already (joining again broke resuming a relative model_dir).
    paths = list(state.all_model_checkpoint_paths) or [
        state.model_checkpoint_path]
    return list(reversed(paths))

  def _restore_one(self, path):
    """Restores `path`; False (and a warning) if it is unreadable."""
    try:
      checkpointing.restore(self.checkpoint, path)
    except UNREADABLE_CHECKPOINT as e:
      logging.warning("Checkpoint %s is unreadable (%s: %s); trying the one "
                      "before it.", path, type(e).__name__,
                      _first_sentence(e))
      return False
    except (AssertionError, ValueError) as e:
      raise errors.UserError(
          f"{path} does not hold this experiment's variables (a different "
          f"configuration, or a checkpoint of l2t_tf before variables were "
          f"saved by name); start a new train_eval.model_dir. "
          f"{_first_sentence(e)}") from e
    return True

  def restore(self):
    """Restores the newest readable checkpoint; returns True if it did.

    A checkpoint that cannot be read (truncated by a full disk or a kill
    during its save) is skipped with a warning for the one before it.

    Raises:
      UserError: there are checkpoints but none is readable, or they hold
        another experiment.
    """
    paths = self._checkpoint_paths()  # The chief's.
    path = next((p for p in paths if self._restore_one(p)), None)
    if paths and path is None:
      raise errors.UserError(
          f"no checkpoint in {self.checkpoint_dir} can be read "
          f"({len(paths)} tried); move that directory away to start again.")
    if path:
      logging.info("Resumed from %s (epoch %d, round %d).", path,
                   int(self.epoch), int(self.round_in_epoch))
    if self.multi_worker:
      strategy_lib.check_same_on_all_workers(
          self.strategy, self.rounds_done,
          f"the rounds done in {self.checkpoint_dir} (model_dir must be on a "
          f"file system that every worker shares)")
    return bool(path)

  def save(self):
    """Checkpoint + history of everything done so far (history: chief).

    Returns the path, or None on a worker other than the chief or if
    nothing changed since the last save.
    """
    position = (int(self.epoch), int(self.rounds_done))
    if position == getattr(self, "_saved_position", None):
      return None
    try:
      # History first: a kill between the two leaves a history ahead of the
      # checkpoint, which `History.load` cuts back to what it restored.
      if self.is_chief:
        self.history_action.write(self._train_time())
      path = self.manager.save(checkpoint_number=int(self.rounds_done))
      if not self.is_chief:
        tf.io.gfile.rmtree(self.manager.directory)
        return None
    except WRITE_ERRORS as e:
      raise errors.UserError(
          f"cannot write to {self.checkpoint_dir} ({type(e).__name__}: "
          f"{_first_sentence(e)}); the last checkpoint saved, "
          f"{tf.train.latest_checkpoint(self.checkpoint_dir)}, is intact: "
          f"free space or restore write access, then run the same command "
          f"again to resume from it.") from e
    self._saved_position = position
    # Debug: one line per round would break the progress bar (issue 22).
    logging.debug("Saved checkpoint %s.", path)
    return path

  # ---- loop -------------------------------------------------------------
  def run(self):
    """Teaches until `teacher_epochs` are done; returns the results dict."""
    self.restore()
    self.resumed_from_round = int(self.rounds_done)
    os.makedirs(self.model_dir, exist_ok=True)
    writer = (tf.summary.create_file_writer(
        os.path.join(self.model_dir, "tensorboard")) if self.is_chief else
              tf.summary.create_noop_writer())
    # Ctrl-C / SIGTERM ask the loop to stop after the current round (saved);
    # a second one stops at once. A flag, not an exception raised wherever
    # the signal lands (one raised inside a finaliser is swallowed).
    self._stop_signal = None
    previous = {sig: signal.signal(sig, self._request_stop)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    self.history = self.history_action.load(self.counters)
    # Wall time of the run over all its processes (resumes add up).
    self._clock = (time.perf_counter(),
                   self.history.get("train_time_s", 0.0))
    try:
      with writer.as_default():
        self._loop()
    except (KeyboardInterrupt, Interrupted):
      if self.multi_worker:  # Saving is collective; peers may be gone.
        logging.warning("Interrupted: the job resumes from the last "
                        "checkpoint in %s.", self.checkpoint_dir)
        raise
      logging.warning("Interrupted: saving the last completed round.")
      self.save()
      raise
    except strategy_lib.COLLECTIVE_ERRORS as e:
      if not self.multi_worker:
        raise
      raise strategy_lib.WorkerLost(
          e, self.strategy, tf.train.latest_checkpoint(
              self.checkpoint_dir)) from e
    finally:
      for action in self.actions:
        action.end(self)
      for sig, handler in previous.items():
        signal.signal(sig, handler)
    return self._results(self.history)

  def _request_stop(self, signum, frame):
    del frame
    if self._stop_signal is not None:
      raise Interrupted(f"signal {signum} (again)")
    self._stop_signal = signum
    logging.warning("Signal %d: stopping after this round (again to stop "
                    "now).", signum)

  def _check_stop(self):
    if self._stop_signal is not None:
      raise Interrupted(f"signal {self._stop_signal}")

  def _call(self, hook, *args):
    for action in self.actions:
      getattr(action, hook)(self, *args)

  def _loop(self):
    first_round_checked = False
    self._call("start")
    while int(self.epoch) < self.teacher_epochs:
      epoch = int(self.epoch)
      data, rounds = self.epoch_rounds(epoch)
      total_rounds = max(rounds * self.teacher_epochs, 1)  # For `progress`.
      self._call("epoch_start", epoch, rounds)
      for train_batches, validation_batch in data.skip(
          int(self.round_in_epoch)):
        if not first_round_checked:
          self.task.check_labels(self.student, train_batches[1])
          first_round_checked = True
        # Collectives have no timeout; a peer that does not reach the round
        # within collective_timeout_s stops the job here (`strategy`).
        strategy_lib.wait_for_peers(self.strategy,
                                    f"round_{int(self.rounds_done)}")
        traces = self.round.total_traces()
        result = self.round(
            train_batches, validation_batch,
            progress=int(self.rounds_done) / total_rounds,
            student_steps=int(self.student_steps))
        self._count(result)
        self._check_divergence(result)
        metrics = dict(result.metrics(),
                       traced=float(self.round.total_traces() > traces))
        self._call("round_end", metrics)
        self._check_stop()
        if self.max_rounds and int(self.rounds_done) >= self.max_rounds:
          self.save()
          return
      self._end_epoch(epoch)

  def _check_divergence(self, result):
    """Stops the run if a student's loss or weights blew up (not saved).

    Raises:
      Diverged: naming the round, the student and the learning rate.
    """
    losses = {"student": result.train_loss,
              "comparison student": result.comparison_loss}
    for name, finite in self._finite.items():
      loss = losses[name]
      bad_loss = loss is not None and not (np.isfinite(loss) and
                                           abs(loss) <= self.max_abs_loss)
      if bad_loss or not bool(finite()):
        what = (f"its training loss is {loss:.4g}" if bad_loss else
                "its weights are not finite")
        kept = tf.train.latest_checkpoint(self.checkpoint_dir)
        raise Diverged(
            f"the {name} diverged in round {int(self.rounds_done)} ({what}; "
            f"limit Trainer.max_abs_loss = {self.max_abs_loss:g}): lower "
            f"Trainer.student_learning_rate (now {self.learning_rate:g}). "
            f"Nothing of this round was saved; the last checkpoint is "
            f"{kept or 'none (none was saved yet)'}.")

  def _count(self, result):
    self.counters.count(result)
    if result.skipped_updates:
      logging.warning("Round %d: non-finite hypergradient, DLN/teacher update "
                      "skipped (%d so far).", int(self.rounds_done),
                      int(self.skipped_updates))

  def _evaluate(self):
    """Test metrics of the student and (comparison_*) its comparison.

    With a held-out split, also its metrics, `test_` read as `heldout_`.
    """
    results = {}
    students = {"": self.student, "comparison_": self.comparison_student}
    for prefix, student in students.items():
      if student is None:
        continue
      for k, v in self.task.evaluate(student, self.test_data).items():
        results[prefix + k] = v
      if self.heldout_data is not None:
        for k, v in self.task.evaluate(student, self.heldout_data).items():
          results[prefix + k.replace("test_", "heldout_", 1)] = v
    return results

  def _has_pairwise_dln(self):
    """Whether this run teaches a PairwiseDLN (it has a properness)."""
    return self.experiment.teaches and isinstance(self.dln,
                                                  dln_lib.PairwiseDLN)

  def _end_epoch(self, epoch):
    entry = {"epoch": epoch + 1, "rounds_done": int(self.rounds_done)}
    if self._has_pairwise_dln():
      entry["dln_properness"] = loss_surface.properness(self.dln)
    entry.update(self._evaluate())
    self._call("epoch_end", epoch, entry)
    logging.info("Teacher epoch %d: %s", epoch + 1, entry)
    self.epoch.assign_add(1)
    self.round_in_epoch.assign(0)
    self.save()

  # ---- results ----------------------------------------------------------
  def _train_time(self):
    start, before = getattr(self, "_clock", (time.perf_counter(), 0.0))
    return before + time.perf_counter() - start

  def _final_evaluation(self, history):
    """Test metrics of both students now (issue 14: no second evaluation).

    If the run ended with a teacher epoch, its entry already holds them
    (nothing trained since): on VOC or COCO that saves two full passes.
    """
    last = history["epochs"][-1] if history["epochs"] else None
    if last is not None and last["rounds_done"] == int(self.rounds_done):
      return {k: v for k, v in last.items()
              if k not in ("epoch", "rounds_done", "dln_properness")}
    return self._evaluate()

  def _results(self, history):
    results = self._final_evaluation(history)
    times = history["round_time_s"]
    results.update(self.experiment.warm_start,
                   **_teaching_summary(history["rounds"]))
    if self.experiment.teaches:
      results["dln_relative_change"] = self.round.dln_relative_change()
    if self._has_pairwise_dln():
      results["dln_properness"] = loss_surface.properness(self.dln)
    results.update(
        primary_metric=self.task.primary_metric, method=self.method,
        hypergradient_mode=getattr(self.round, "mode", None),
        hypergradient_fallback=getattr(self.round, "fallback_reason", None),
        rounds_done=int(self.rounds_done),
        student_steps=int(self.student_steps),
        teacher_epochs_done=int(self.epoch),
        skipped_updates=int(self.skipped_updates),
        resumed_from_round=self.resumed_from_round,
        median_round_time_s=float(np.median(times)) if times else None,
        traces=getattr(self.round, "trace_count", 0),
        history=history["epochs"], train_time_s=self._train_time(),
        model_dir=self.model_dir)
    return results
