"""The teaching loop: teacher epochs of rounds, checkpoints, summaries.

Paper Algorithm 1 over `teacher_epochs` epochs. At every epoch the training
set is split again into the student's training part and the teacher's
validation part (`data.splits`); an epoch has one round per validation batch
(as the authors' release; `rounds_per_validation_batch` rounds per batch if
set, `rounds_per_epoch` rounds if set), each round consuming 2N training
batches.

A CE baseline student with the same initial weights is trained on exactly the
same batches in the same order (one SGD step per step of the taught student)
so that every run carries its own comparison.

If unrolled mode fails in TensorFlow in the first rounds (issue 13: a graph
optimiser error or out of memory, `FALLBACK_ERRORS`), the trainer undoes
what the failed round changed, switches the round to reverse mode with one
warning and runs it again; `results["hypergradient_mode"]` is the mode
used (`hypergradient_fallback` the reason, if any).

Everything a run has learned lives in one `tf.train.Checkpoint` (students,
DLN, teacher, its LSTM state, optimiser slots, the position in the data and
the counters) written every `checkpoint_every_rounds` rounds (default 1, so a
crash loses at most the round it happened in; raise it for large students),
at the end of every teacher epoch and when the run is interrupted (Ctrl-C,
SIGTERM). The
data position is exact: a resumed run rebuilds the epoch's data from the seed
and skips the rounds already done, so it ends where an uninterrupted run ends.
"""
import json
import os
import signal
import sys
import tempfile
import time

from absl import logging
import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import errors
import tqdm

from l2t_tf import dln as dln_lib
from l2t_tf import dln_updaters
from l2t_tf import dln_warm_start
from l2t_tf import loss_surface
from l2t_tf import strategy as strategy_lib
from l2t_tf import teaching_round
from l2t_tf.data import splits


METHODS = ("l2t_dln", "baseline")
#: TensorFlow errors of a graph it cannot run (issue 13: a grappler rewrite
#: of the unrolled loop's gradient, or memory) after which the first rounds
#: retry in reverse mode (`TeachingRound.fallback_to_reverse`).
FALLBACK_ERRORS = (tf.errors.AlreadyExistsError,
                   tf.errors.ResourceExhaustedError)
#: oneDNN's out of memory on CPU arrives as an AbortedError saying this.
ONEDNN_OUT_OF_MEMORY = "could not create a memory object"
#: Rounds guarded so: the failure of issue 13 surfaces at the second call of
#: a function with the same node names, i.e. round 1's stage III, or round 2
#: for an updater without stage III.
FALLBACK_ROUNDS = 2
#: Per-round diagnostics kept in history.json (issue 12; teaching_round).
ROUND_DIAGNOSTICS = ("e1", "e2", "e2_minus_e1", "update_helped",
                     "update_accepted", "teacher_cosine", "dln_step_norm",
                     "dln_relative_change", "hypergradient_norm")


class Interrupted(Exception):
  """Ctrl-C or SIGTERM, turned into an exception so the loop can save and exit."""


def _is_fallback_error(error):
  """Whether a round failing with `error` retries in reverse mode."""
  if isinstance(error, FALLBACK_ERRORS):
    return True
  return (isinstance(error, tf.errors.AbortedError) and
          ONEDNN_OUT_OF_MEMORY in (error.message or ""))


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


def _validate(unroll_length, validation_ratio, teacher_epochs, batch_size,
              validation_batch_size, num_replicas):
  if int(unroll_length) < 1:
    raise errors.UserError(f"unroll_length (N) must be >= 1, got {unroll_length}.")
  if not 0.0 < float(validation_ratio) < 1.0:
    raise errors.UserError(f"validation_ratio must be in (0, 1), got "
                     f"{validation_ratio}.")
  if int(teacher_epochs) < 1:
    raise errors.UserError(f"teacher_epochs must be >= 1, got {teacher_epochs}.")
  for name, size in (("batch_size", batch_size),
                     ("validation_batch_size", validation_batch_size)):
    if size < 1 or size % num_replicas:
      raise errors.UserError(f"{name}={size} must be positive and divisible by the "
                       f"{num_replicas} replicas.")


@gin.configurable(denylist=["task", "model_dir", "strategy"])
class Trainer:
  """Runs L2T-DLN on a task: build, resume, teach, evaluate."""

  def __init__(self, task, model_dir, strategy, unroll_length=25,
               teacher_epochs=10, validation_ratio=0.5, batch_size=25,
               validation_batch_size=100, student_learning_rate=0.1,
               hypergradient_mode="unrolled", stage3="paper",
               updater=dln_updaters.TeacherUpdater, train_comparison=True,
               rounds_per_epoch=None, checkpoint_every_rounds=1, seed=0,
               max_rounds=None, eval_batch_size=500, progress=True,
               method="l2t_dln", rounds_per_validation_batch=1,
               validation_bn_mode="train", update_guard=False,
               dln_warm_start=False, update_guard_min_properness=None):
    if method not in METHODS:
      raise errors.UserError(f"Trainer.method must be one of {METHODS}, got "
                             f"{method!r}.")
    if method == "fixed_loss":
      train_comparison = False
    _validate(unroll_length, validation_ratio, teacher_epochs, batch_size,
              validation_batch_size, strategy.num_replicas_in_sync)
    self.task, self.model_dir, self.strategy = task, model_dir, strategy
    self.unroll_length, self.teacher_epochs = int(unroll_length), teacher_epochs
    self.validation_ratio, self.seed = float(validation_ratio), int(seed)
    self.batch_size, self.validation_batch_size = batch_size, validation_batch_size
    self.rounds_per_epoch, self.max_rounds = rounds_per_epoch, max_rounds
    self.rounds_per_validation_batch = int(rounds_per_validation_batch)
    if self.rounds_per_validation_batch < 1:
      raise errors.UserError(f"rounds_per_validation_batch must be >= 1, got "
                             f"{rounds_per_validation_batch}.")
    self.checkpoint_every_rounds = checkpoint_every_rounds
    self.eval_batch_size, self.progress = eval_batch_size, progress
    self.train_data, self.train_size = task.training_set()
    self.test_data = task.test_batches(eval_batch_size)
    self.history = {"epochs": [], "round_time_s": [], "rounds": []}
    self._rounds_run = 0  # By this process (`_may_fall_back`).
    self.method = method
    self.round_options = dict(
        validation_bn_mode=validation_bn_mode, guard=bool(update_guard),
        guard_min_properness=update_guard_min_properness)
    self.dln_warm_start = bool(dln_warm_start)
    self._build(updater, train_comparison, student_learning_rate,
                hypergradient_mode, stage3)

  def _build(self, updater, train_comparison, learning_rate, mode, stage3):
    keras.utils.set_random_seed(self.seed)
    with self.strategy.scope():
      self.student = self.task.build_student()
      self.dln = self.task.build_dln()
      dln_lib.check_scalar_loss(
          self.dln, *self.task.dummy_batch(self.student))
      self.task.fixed_loss_layer()  # Builds a learnable loss in scope.
      self.baseline = None
      if train_comparison:
        self.baseline = keras.models.clone_model(self.student)
        self.baseline.set_weights(self.student.get_weights())
      self.updater = updater() if isinstance(updater, type) else updater
      self.updater.build(self.dln.trainable_variables)
    self.warm_start = self._warm_start()  # Before phi_init is recorded.
    # Counters, kept by Python on every worker: plain (not mirrored)
    # variables, so that int(counter) works under any strategy.
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.round_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.rounds_done = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.skipped_updates = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.round = teaching_round.TeachingRound(
        self.strategy, self.task, self.student, self.dln, self.updater,
        learning_rate, mode, stage3, self.baseline,
        baseline_only=(self.method == "fixed_loss"), **self.round_options)
    # Keras 3 layers that keep weights in Python lists (the DLN, the LSTM
    # teacher) are not fully tracked by tf.train.Checkpoint: list their
    # variables explicitly (restored by position, construction is fixed).
    trackables = dict(student=self.student, dln=list(self.dln.variables),
                      updater=self.updater,
                      updater_weights=self.updater.keras_weights(),
                      dln_initial=self.round.dln_initial,
                      epoch=self.epoch, round_in_epoch=self.round_in_epoch,
                      rounds_done=self.rounds_done,
                      skipped_updates=self.skipped_updates)
    if self.baseline is not None:
      trackables["baseline"] = self.baseline
    if self.task.fixed_loss_layer() is not None:
      trackables["fixed_loss"] = list(
          self.task.fixed_loss_layer().variables)
    self.checkpoint = tf.train.Checkpoint(**trackables)
    # Multi-worker: every worker saves (a collective), the chief into
    # model_dir, the others into a temporary directory deleted after saving.
    self.is_chief = strategy_lib.is_chief(self.strategy)
    self.multi_worker = strategy_lib.is_multi_worker(self.strategy)
    self.checkpoint_dir = os.path.join(self.model_dir, "checkpoints")
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, self.checkpoint_dir if self.is_chief else
        self._temporary_dir(), max_to_keep=3)

  def _warm_start(self):
    """Fits the DLN to a proper loss before teaching (`dln_warm_start`)."""
    if not self.dln_warm_start or self.method != "l2t_dln":
      return {}  # A fixed-loss run has no DLN to teach.
    if not isinstance(self.dln, dln_lib.PairwiseDLN):
      raise errors.UserError(
          f"Trainer.dln_warm_start fits a PairwiseDLN; this task's DLN is a "
          f"{type(self.dln).__name__}.")
    fit = dln_warm_start.warm_start(self.dln)
    logging.info("DLN warm start: %s", fit)
    return fit

  def _temporary_dir(self):
    """Where a non-chief worker saves (deleted after each save)."""
    index = strategy_lib.worker_index(self.strategy)
    return os.path.join(tempfile.gettempdir(),
                        f"l2t_worker{index}_{os.getpid()}")

  def checkpoint_variables(self):
    """Every variable the checkpoint holds, in construction order."""
    variables = list(self.student.variables) + list(self.dln.variables)
    variables += list(self.updater.variables) + self.updater.keras_weights()
    variables += list(getattr(self.updater.optimizer, "variables", []))
    if self.baseline is not None:
      variables += list(self.baseline.variables)
    return variables + [self.epoch, self.round_in_epoch, self.rounds_done,
                        self.skipped_updates]

  # ---- data -------------------------------------------------------------
  def epoch_rounds(self, epoch):
    """(dataset of rounds for `epoch`, number of rounds in it)."""
    train, val, n_train, n_val = splits.split(
        self.train_data, self.train_size, self.validation_ratio, self.seed,
        epoch)
    if n_train < self.batch_size or n_val < self.validation_batch_size:
      raise errors.UserError(
          f"validation_ratio={self.validation_ratio} leaves {n_train} training "
          f"and {n_val} validation examples; need at least batch_size="
          f"{self.batch_size} and validation_batch_size="
          f"{self.validation_batch_size}.")
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

  # ---- loop -------------------------------------------------------------
  def restore(self):
    """Restores the latest checkpoint if any; returns True if it did."""
    path = tf.train.latest_checkpoint(self.checkpoint_dir)  # The chief's.
    if path:
      self.checkpoint.restore(path)
      logging.info("Resumed from %s (epoch %d, round %d).", path,
                   int(self.epoch), int(self.round_in_epoch))
    if self.multi_worker:
      strategy_lib.check_same_on_all_workers(
          self.strategy, self.rounds_done,
          f"the rounds done in {self.checkpoint_dir} (model_dir must be on a "
          f"file system that every worker shares)")
    return bool(path)

  def save(self):
    """Checkpoint + history of everything done so far (history: chief)."""
    path = self.manager.save(checkpoint_number=int(self.rounds_done))
    if not self.is_chief:
      tf.io.gfile.rmtree(self.manager.directory)
      return None
    self._save_history()
    logging.info("Saved checkpoint %s.", path)
    return path

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
    self.history = history = self._load_history()
    # Wall time of the run over all its processes (resumes add up).
    self._clock = (time.perf_counter(), history.get("train_time_s", 0.0))
    try:
      with writer.as_default():
        self._loop(history)
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
      for sig, handler in previous.items():
        signal.signal(sig, handler)
    return self._results(history)

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

  def _loop(self, history):
    first_round_checked = False
    if int(self.rounds_done) == 0 and self.method == "l2t_dln":
      self._snapshot_dln(0)
    while int(self.epoch) < self.teacher_epochs:
      epoch = int(self.epoch)
      data, rounds = self.epoch_rounds(epoch)
      total_rounds = max(rounds * self.teacher_epochs, 1)  # For `progress`.
      done = int(self.round_in_epoch)
      bar = tqdm.tqdm(total=rounds, initial=done, file=sys.stderr,
                      disable=not (self.progress and self.is_chief),
                      desc=f"teacher epoch {epoch + 1}/{self.teacher_epochs}")
      for train_batches, validation_batch in data.skip(done):
        if not first_round_checked:
          self.task.check_labels(self.student, train_batches[1])
          first_round_checked = True
        traces = self.round.total_traces()
        metrics = self._run_round(
            train_batches, validation_batch,
            progress=int(self.rounds_done) / total_rounds,
            student_steps=int(self.rounds_done) *
            self.round.steps_per_round(self.unroll_length))
        metrics["traced"] = float(self.round.total_traces() > traces)
        self._count_round(metrics)
        self._summarise(metrics, history)
        bar.set_postfix(loss=f"{metrics['train_loss']:.3f}",
                        s=f"{metrics['round_time_s']:.2f}")
        bar.update(1)
        if int(self.rounds_done) % self.checkpoint_every_rounds == 0:
          self.save()
        self._check_stop()
        if self.max_rounds and int(self.rounds_done) >= self.max_rounds:
          bar.close()
          self.save()
          return
      bar.close()
      self._end_epoch(epoch, history)

  def _may_fall_back(self):
    """Whether a failing round may retry in reverse mode (issue 13).

    Only unrolled mode, only the first `FALLBACK_ROUNDS` rounds of this
    process (later errors are not the graph's) and not across workers
    (they would have to switch together).
    """
    return (self.round.mode == "unrolled" and self.method == "l2t_dln" and
            not self.multi_worker and
            self._rounds_run < FALLBACK_ROUNDS)

  def _state_variables(self):
    """Every variable a round may change (learnable baseline loss too)."""
    variables = self.checkpoint_variables()
    if self.task.fixed_loss_layer() is not None:
      variables += list(self.task.fixed_loss_layer().variables)
    return variables

  def _run_round(self, *args, **kwargs):
    """`self.round(*args, **kwargs)`, falling back to reverse mode if needed.

    A stage that fails so (`_is_fallback_error`) may already have written
    the student back (measured: the failed stage III of issue 13 had), so
    everything the round may change is saved before and restored before the
    round runs again in reverse mode.
    """
    if not self._may_fall_back():
      self._rounds_run += 1
      return self.round(*args, **kwargs)
    variables = self._state_variables()
    saved = [tf.identity(v) for v in variables]
    try:
      metrics = self.round(*args, **kwargs)
      self._rounds_run += 1
      return metrics
    except tf.errors.OpError as e:
      if not _is_fallback_error(e):
        raise
      # Outside this block the error's traceback (and what its frames hold)
      # is freed before the round runs again.
      first_line = ((e.message or "").strip().splitlines() or [""])[0]
      reason = (f"{type(e).__name__} in round {int(self.rounds_done) + 1}: "
                f"{first_line[:300]}")
    for var, value in zip(variables, saved):
      var.assign(value)
    del saved
    self.round.fallback_to_reverse(reason)
    self._rounds_run += 1
    return self.round(*args, **kwargs)

  def _count_round(self, metrics):
    self.round_in_epoch.assign_add(1)
    self.rounds_done.assign_add(1)
    self.skipped_updates.assign_add(metrics["skipped_updates"])
    if metrics["skipped_updates"]:
      logging.warning("Round %d: non-finite hypergradient, DLN/teacher update "
                      "skipped (%d so far).", int(self.rounds_done),
                      int(self.skipped_updates))

  def _summarise(self, metrics, history):
    step = int(self.rounds_done)
    for name, value in metrics.items():
      tf.summary.scalar(f"round/{name}", value, step=step)
    if not metrics["traced"]:  # Time per round without tracing (Table 5).
      history["round_time_s"].append(metrics["round_time_s"])
    diagnostics = {k: metrics[k] for k in ROUND_DIAGNOSTICS if k in metrics}
    history["rounds"].append(dict(round=step, **diagnostics))

  def _snapshot_dln(self, epoch):
    """Figure 3: DLN weights (and a TensorBoard contour) per teacher epoch."""
    if not self.is_chief or not isinstance(self.dln, dln_lib.PairwiseDLN):
      return
    loss_surface.save_snapshot(self.dln, self.model_dir, epoch)
    png = loss_surface.contour_png(self.dln, f"DLN, teacher epoch {epoch}")
    tf.summary.image("dln_surface", tf.image.decode_png(png)[None],
                     step=epoch)

  def _has_pairwise_dln(self):
    """Whether this run teaches a PairwiseDLN (it has a properness)."""
    return self.method == "l2t_dln" and isinstance(self.dln,
                                                   dln_lib.PairwiseDLN)

  def _end_epoch(self, epoch, history):
    entry = {"epoch": epoch + 1, "rounds_done": int(self.rounds_done)}
    if self._has_pairwise_dln():
      entry["dln_properness"] = loss_surface.properness(self.dln)
    entry.update(self.task.evaluate(self.student, self.test_data))
    if self.baseline is not None:
      for k, v in self.task.evaluate(self.baseline, self.test_data).items():
        entry[f"comparison_{k}"] = v
    for name, value in entry.items():
      if name != "epoch" and np.ndim(value) == 0:
        tf.summary.scalar(f"epoch/{name}", value, step=epoch + 1)
    history["epochs"].append(entry)
    self._snapshot_dln(epoch + 1)
    logging.info("Teacher epoch %d: %s", epoch + 1, entry)
    self.epoch.assign_add(1)
    self.round_in_epoch.assign(0)
    self.save()

  # ---- results ----------------------------------------------------------
  def _history_path(self):
    return os.path.join(self.model_dir, "history.json")

  def _load_history(self):
    empty = {"epochs": [], "round_time_s": [], "rounds": []}
    if not tf.io.gfile.exists(self._history_path()):
      return empty
    with tf.io.gfile.GFile(self._history_path()) as f:
      history = json.load(f)
    # Keep only what the restored checkpoint has seen.
    history["epochs"] = history["epochs"][:int(self.epoch)]
    history["rounds"] = [r for r in history.get("rounds", [])
                         if r["round"] <= int(self.rounds_done)]
    return history

  def _train_time(self):
    start, before = getattr(self, "_clock", (time.perf_counter(), 0.0))
    return before + time.perf_counter() - start

  def _save_history(self):
    self.history["train_time_s"] = self._train_time()
    with tf.io.gfile.GFile(self._history_path(), "w") as f:
      json.dump(self.history, f)

  def _final_evaluation(self, history):
    """Test metrics of both students now (issue 14: no second evaluation).

    If the run ended with a teacher epoch, its entry already holds them
    (nothing trained since): on VOC or COCO that saves two full passes.
    """
    last = history["epochs"][-1] if history["epochs"] else None
    if last is not None and last["rounds_done"] == int(self.rounds_done):
      return {k: v for k, v in last.items()
              if k not in ("epoch", "rounds_done", "dln_properness")}
    results = dict(self.task.evaluate(self.student, self.test_data))
    if self.baseline is not None:
      for k, v in self.task.evaluate(self.baseline, self.test_data).items():
        results[f"comparison_{k}"] = v
    return results

  def _results(self, history):
    metric = self.task.primary_metric
    results = self._final_evaluation(history)
    times = history["round_time_s"]
    results.update(self.warm_start, **_teaching_summary(history["rounds"]))
    if self.method == "l2t_dln":
      results["dln_relative_change"] = self.round.dln_relative_change()
    if self._has_pairwise_dln():
      results["dln_properness"] = loss_surface.properness(self.dln)
    results.update(
        primary_metric=metric, method=self.method,
        hypergradient_mode=(self.round.mode if self.method == "l2t_dln"
                            else None),
        hypergradient_fallback=self.round.fallback_reason,
        rounds_done=int(self.rounds_done),
        teacher_epochs_done=int(self.epoch),
        skipped_updates=int(self.skipped_updates),
        resumed_from_round=self.resumed_from_round,
        median_round_time_s=float(np.median(times)) if times else None,
        traces=self.round.trace_count, history=history["epochs"],
        train_time_s=self._train_time(),
        model_dir=self.model_dir)
    return results
