"""A run's data: the rounds of each teacher epoch, and the held-out split.

At every epoch the training set is split again into the student's training
part and the teacher's validation part (`splits`), unless the task has a
fixed validation set (`Task.fixed_validation_split`: the validation part of
every epoch, the student training on all of the training set); an epoch has
one round per validation batch (as the authors' release;
`rounds_per_validation_batch` rounds per batch if set, `rounds_per_epoch`
rounds if set), each round consuming `stages` blocks of N training batches
(`rounds.base`). The data position is exact: the epoch's data is rebuilt
from the seed, so a resumed run skips the rounds done and ends where an
uninterrupted run ends.
"""
from l2t_tf import errors
from l2t_tf.data import splits


class EpochData:
  """The task's training data, split per teacher epoch into rounds.

  Args:
    task: a `tasks.base.Task`.
    stages: blocks of N batches a round consumes (the round's `stages`).
    unroll_length, batch_size, validation_batch_size, validation_ratio,
    rounds_per_epoch, rounds_per_validation_batch, heldout_ratio,
    eval_batch_size, seed: the `Trainer` settings of the same names.
  """

  def __init__(self, task, *, stages, unroll_length, batch_size,
               validation_batch_size, validation_ratio, rounds_per_epoch,
               rounds_per_validation_batch, heldout_ratio, eval_batch_size,
               seed):
    self.task, self.stages = task, stages
    self.unroll_length, self.seed = int(unroll_length), int(seed)
    self.batch_size = batch_size
    self.validation_batch_size = validation_batch_size
    self.validation_ratio = float(validation_ratio)
    self.rounds_per_epoch = rounds_per_epoch
    self.rounds_per_validation_batch = int(rounds_per_validation_batch)
    self.eval_batch_size = eval_batch_size
    self.train_data, self.train_size = task.training_set()
    self.test_data = task.test_batches(eval_batch_size)
    self.heldout_data = self._hold_out(float(heldout_ratio))
    self.fixed_validation = self._fixed_validation()
    self._labels_checked = False

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

  def epoch(self, epoch):
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
        self.rounds_per_validation_batch, stages=self.stages)
    return data.take(rounds), rounds

  def check_labels(self, student, train_batches):
    """The task's check of the first round's labels (once per process)."""
    if not self._labels_checked:
      self.task.check_labels(student, train_batches[1])
      self._labels_checked = True
