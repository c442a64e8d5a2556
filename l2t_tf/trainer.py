"""The teaching loop: teacher epochs of rounds, evaluated, saved, reported.

Paper Algorithm 1 over `teacher_epochs` epochs. The `Trainer` owns only the
loop (as Orbit's `Controller`): it receives its parts built (`build.build`
makes them from the gin settings) and keeps resume, rounds, the evaluation
at the end of each teacher epoch, checkpoints, history.json and the results:

  round        the method (`rounds`): trains the students on a round's
               batches, returns a `RoundResult`
  data         `data.epochs.EpochData`: the rounds of each teacher epoch
  evaluator    `evaluation.Evaluator`: test (and held-out) metrics
  checkpoints  `checkpointing.RunCheckpoints`: restore, save
  history      `history.History`: history.json
  counters     `experiment.Counters`: where the run is
  actions      callables of each round's and epoch's output (`actions`)

Everything a run has learned lives in one `tf.train.Checkpoint` (students,
DLN, teacher, its LSTM state, optimiser slots, the counters, each by name)
written every `checkpoint_every_rounds` rounds (default 1, so a crash loses
at most the round it happened in; raise it for large students), at the end
of every teacher epoch and when the run is interrupted (Ctrl-C, SIGTERM).
The data position is exact: a resumed run rebuilds the epoch's data from
the seed and skips the rounds already done, so it ends where an
uninterrupted run ends.
"""
import functools
import os
import signal
import time

from absl import logging
import numpy as np
import tensorflow as tf

from l2t_tf import actions as actions_lib
from l2t_tf import checkpointing
from l2t_tf import errors
from l2t_tf import strategy as strategy_lib

# Re-exported: what reading and writing checkpoints may raise.
UNREADABLE_CHECKPOINT = checkpointing.UNREADABLE_CHECKPOINT
WRITE_ERRORS = checkpointing.WRITE_ERRORS


class Diverged(errors.UserError):
  """A student's loss or weights became non-finite or exploded."""


class Interrupted(Exception):
  """Ctrl-C or SIGTERM, turned into an exception so the loop can save and exit."""


def _all_finite(variables):
  return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v))
                        for v in variables
                        if tf.as_dtype(v.dtype).is_floating])


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


class Trainer:
  """Runs built parts for `teacher_epochs`: resume, teach, evaluate, save.

  Args (keyword-only; the parts as the module lists them):
    round, data, evaluator, checkpoints, history, counters, actions: parts.
    strategy: the `tf.distribute.Strategy` the parts were built under.
    model_dir: where TensorBoard summaries go (checkpoints: `checkpoints`).
    teacher_epochs: teacher epochs to run.
    max_rounds: stop (saved) after this many rounds in all (None: never).
    checkpoint_every_rounds: save every this many rounds.
    max_abs_loss: a student loss above this (or not finite) stops the run.
  """

  def __init__(self, *, round, data, evaluator, checkpoints, history,  # pylint: disable=redefined-builtin
               counters, actions=(), strategy, model_dir, teacher_epochs,
               max_rounds=None, checkpoint_every_rounds=1, max_abs_loss=1e6):
    self.round, self.data, self.evaluator = round, data, evaluator
    self.checkpoints, self.history, self.counters = (checkpoints, history,
                                                     counters)
    self.actions, self.strategy = tuple(actions), strategy
    self.model_dir, self.teacher_epochs = model_dir, int(teacher_epochs)
    self.max_rounds, self.max_abs_loss = max_rounds, max_abs_loss
    self.checkpoint_every_rounds = int(checkpoint_every_rounds)
    self.is_chief = strategy_lib.is_chief(strategy)
    self.multi_worker = strategy_lib.is_multi_worker(strategy)
    self._finite = {
        name: tf.function(functools.partial(_all_finite, model.variables))
        for name, model in round.students().items()}
    self._saved_position = None
    self._clock = (time.perf_counter(), 0.0)
    self.resumed_from_round = 0

  rounds_done = property(lambda self: self.counters.rounds_done)

  # ---- checkpoints ------------------------------------------------------
  def restore(self):
    """Restores the newest readable checkpoint; returns True if it did."""
    path = self.checkpoints.restore()
    if path:
      logging.info("Resumed from %s (epoch %d, round %d).", path,
                   int(self.counters.epoch), int(self.counters.round_in_epoch))
    if self.multi_worker:
      strategy_lib.check_same_on_all_workers(
          self.strategy, self.counters.rounds_done,
          f"the rounds done in {self.checkpoints.directory} (model_dir must "
          f"be on a file system that every worker shares)")
    return bool(path)

  def save(self):
    """Checkpoint + history of everything done so far (history: chief).

    Returns the path, or None on a worker other than the chief or if
    nothing changed since the last save.
    """
    position = (int(self.counters.epoch), int(self.counters.rounds_done))
    if position == self._saved_position:
      return None
    # History first: a kill between the two leaves a history ahead of the
    # checkpoint, which `History.load` cuts back to what it restored.
    write_history = (lambda: self.history.write(self._train_time())
                     if self.is_chief else None)
    path = self.checkpoints.save(int(self.counters.rounds_done),
                                 before=write_history)
    self._saved_position = position
    # Debug: one line per round would break the progress bar (issue 22).
    logging.debug("Saved checkpoint %s.", path)
    return path

  # ---- loop -------------------------------------------------------------
  def run(self):
    """Teaches until `teacher_epochs` are done; returns the results dict."""
    self.restore()
    self.resumed_from_round = int(self.counters.rounds_done)
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
    history = self.history.load(self.counters)
    # Wall time of the run over all its processes (resumes add up).
    self._clock = (time.perf_counter(), history.get("train_time_s", 0.0))
    try:
      with writer.as_default():
        self._loop()
    except (KeyboardInterrupt, Interrupted):
      if self.multi_worker:  # Saving is collective; peers may be gone.
        logging.warning("Interrupted: the job resumes from the last "
                        "checkpoint in %s.", self.checkpoints.directory)
        raise
      logging.warning("Interrupted: saving the last completed round.")
      self.save()
      raise
    except strategy_lib.COLLECTIVE_ERRORS as e:
      if not self.multi_worker:
        raise
      raise strategy_lib.WorkerLost(e, self.strategy,
                                    self.checkpoints.latest()) from e
    finally:
      for sig, handler in previous.items():
        signal.signal(sig, handler)
    return self._results(self.history.data)

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

  def _act(self, output):
    for action in self.actions:
      action(output)

  def _loop(self):
    counters = self.counters
    if int(counters.rounds_done) == 0:  # The state teaching starts from.
      self._act(actions_lib.EpochOutput(epochs_done=0, entry={}))
    while int(counters.epoch) < self.teacher_epochs:
      epoch = int(counters.epoch)
      data, rounds = self.data.epoch(epoch)
      total_rounds = max(rounds * self.teacher_epochs, 1)  # For `progress`.
      for train_batches, validation_batch in data.skip(
          int(counters.round_in_epoch)):
        self.data.check_labels(self.round.students()["student"],
                               train_batches)
        # Collectives have no timeout; a peer that does not reach the round
        # within collective_timeout_s stops the job here (`strategy`).
        strategy_lib.wait_for_peers(self.strategy,
                                    f"round_{int(counters.rounds_done)}")
        traces = self.round.total_traces()
        result = self.round(
            train_batches, validation_batch,
            progress=int(counters.rounds_done) / total_rounds,
            student_steps=int(counters.student_steps))
        self._count(result)
        self._check_divergence(result)
        metrics = dict(result.metrics(),
                       traced=float(self.round.total_traces() > traces))
        self.history.add_round(int(counters.rounds_done), metrics)
        self._act(actions_lib.RoundOutput(
            epoch=epoch, round_in_epoch=int(counters.round_in_epoch),
            rounds_in_epoch=rounds, teacher_epochs=self.teacher_epochs,
            rounds_done=int(counters.rounds_done), metrics=metrics))
        if int(counters.rounds_done) % self.checkpoint_every_rounds == 0:
          self.save()
        self._check_stop()
        if self.max_rounds and int(counters.rounds_done) >= self.max_rounds:
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
        kept = self.checkpoints.latest()
        raise Diverged(
            f"the {name} diverged in round {int(self.counters.rounds_done)} "
            f"({what}; limit Trainer.max_abs_loss = {self.max_abs_loss:g}): "
            f"lower Trainer.student_learning_rate (now "
            f"{self.round.learning_rate:g}). Nothing of this round was "
            f"saved; the last checkpoint is "
            f"{kept or 'none (none was saved yet)'}.")

  def _count(self, result):
    self.counters.count(result)
    if result.skipped_updates:
      logging.warning("Round %d: non-finite hypergradient, DLN/teacher update "
                      "skipped (%d so far).", int(self.counters.rounds_done),
                      int(self.counters.skipped_updates))

  def _end_epoch(self, epoch):
    entry = {"epoch": epoch + 1,
             "rounds_done": int(self.counters.rounds_done)}
    entry.update(self.round.epoch_metrics())
    entry.update(self.evaluator.evaluate())
    self.history.add_epoch(entry)
    self._act(actions_lib.EpochOutput(epochs_done=epoch + 1, entry=entry))
    logging.info("Teacher epoch %d: %s", epoch + 1, entry)
    self.counters.epoch.assign_add(1)
    self.counters.round_in_epoch.assign(0)
    self.save()

  # ---- results ----------------------------------------------------------
  def _train_time(self):
    start, before = self._clock
    return before + time.perf_counter() - start

  def _final_evaluation(self, history):
    """Test metrics of both students now (issue 14: no second evaluation).

    If the run ended with a teacher epoch, its entry already holds them
    (nothing trained since): on VOC or COCO that saves two full passes.
    """
    last = history["epochs"][-1] if history["epochs"] else None
    if last is not None and last["rounds_done"] == int(
        self.counters.rounds_done):
      return {k: v for k, v in last.items()
              if k not in ("epoch", "rounds_done", "dln_properness")}
    return self.evaluator.evaluate()

  def _results(self, history):
    results = self._final_evaluation(history)
    times = history["round_time_s"]
    results.update(_teaching_summary(history["rounds"]))
    results.update(self.round.summary())
    counters = self.counters
    results.update(
        primary_metric=self.evaluator.primary_metric,
        method=self.round.method,
        rounds_done=int(counters.rounds_done),
        student_steps=int(counters.student_steps),
        teacher_epochs_done=int(counters.epoch),
        skipped_updates=int(counters.skipped_updates),
        resumed_from_round=self.resumed_from_round,
        median_round_time_s=float(np.median(times)) if times else None,
        history=history["epochs"], train_time_s=self._train_time(),
        model_dir=self.model_dir)
    return results
