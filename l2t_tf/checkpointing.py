"""Variables checkpointed by name, not by position.

`tf.train.Checkpoint` tracks Keras models (by their layer structure) and
`tf.Module`s (by attribute), but not the variables of a Keras 3 *layer* that
keeps its weights in Python lists (the DLN, the LSTM teacher, the L2T-DLF
teacher): tracked through a layer, they are silently missing from the
checkpoint. `layer_variables(layer)` names each of them by its path relative
to the layer ('kernel_0', 'lstm_1/recurrent_kernel'); a dict of such names,
held by a `tf.Module` or passed to a checkpoint (both track a dict by its
keys), is saved and restored by key, so adding a layer or reordering construction can no longer restore one
weight into another. `restore` then fails loudly (`assert_existing_objects_
matched`) if the checkpoint lacks a variable the program has.

`RunCheckpoints` keeps a run's checkpoints: it restores the newest readable
one and saves (multi-worker: every worker, the chief into model_dir).
"""
import os
import tempfile

from absl import logging
import tensorflow as tf

from l2t_tf import errors
from l2t_tf import strategy as strategy_lib

#: Keras' per-layer random-seed state (`SeedGenerator`): auto-numbered
#: (process-dependent names) and not state of ours (no dropout is used).
_SKIPPED_PREFIX = "seed_generator"


def relative_path(variable, layer):
  """`variable.path` without the leading '<layer.name>/' (if it has one)."""
  prefix = layer.name + "/"
  path = variable.path
  return path[len(prefix):] if path.startswith(prefix) else path


def layer_variables(layer):
  """{path relative to `layer`: variable} of every weight of a Keras layer.

  Raises:
    ValueError: if two variables have the same relative path (a layer built
      with auto-numbered sublayer names would give such clashes across runs).
  """
  named = {}
  for variable in layer.variables:
    name = relative_path(variable, layer)
    if name.split("/")[0].startswith(_SKIPPED_PREFIX):
      continue
    if name in named:
      raise ValueError(f"{layer.name}: two variables named {name!r}; give "
                       f"its sublayers explicit names.")
    named[name] = variable
  return named


def restore(checkpoint, path):
  """Restores `path` into `checkpoint`; every existing variable must match.

  Returns:
    The load status (already checked).
  """
  status = checkpoint.restore(path)
  status.assert_existing_objects_matched()
  return status


#: What reading a damaged checkpoint raises (a truncated data file gives
#: IndexError "Read less bytes than requested" from the reader).
UNREADABLE_CHECKPOINT = (IndexError, tf.errors.DataLossError,
                         tf.errors.OutOfRangeError, tf.errors.NotFoundError)
#: What writing to a full, read-only or vanished model_dir raises.
WRITE_ERRORS = (tf.errors.PermissionDeniedError,
                tf.errors.ResourceExhaustedError,
                tf.errors.FailedPreconditionError, tf.errors.UnknownError,
                tf.errors.NotFoundError, OSError)


def first_sentence(error):
  """The first sentence of a (long, one-line) restore error."""
  text = (str(error).strip().splitlines() or [""])[0]
  return text.split(". Showing")[0].split(" when attempting")[0][:300]


class RunCheckpoints:
  """A run's checkpoints in `<model_dir>/checkpoints`: restore, save.

  Multi-worker: every worker saves (a collective), the chief into
  model_dir, the others into a temporary directory deleted after saving.
  """

  def __init__(self, checkpoint, model_dir, strategy):
    self.checkpoint, self.strategy = checkpoint, strategy
    self.is_chief = strategy_lib.is_chief(strategy)
    self.directory = os.path.join(model_dir, "checkpoints")
    self.manager = tf.train.CheckpointManager(
        checkpoint, self.directory if self.is_chief else
        self._temporary_dir(), max_to_keep=3)

  def _temporary_dir(self):
    """Where a non-chief worker saves (deleted after each save)."""
    index = strategy_lib.worker_index(self.strategy)
    return os.path.join(tempfile.gettempdir(),
                        f"l2t_worker{index}_{os.getpid()}")

  def latest(self):
    """The chief's newest checkpoint path, or None."""
    return tf.train.latest_checkpoint(self.directory)

  def _paths(self):
    """The chief's checkpoints, newest first."""
    state = tf.train.get_checkpoint_state(self.directory)
    if state is None:
      return []
    # get_checkpoint_state has joined relative paths to the directory
    # already (joining again broke resuming a relative model_dir).
    paths = list(state.all_model_checkpoint_paths) or [
        state.model_checkpoint_path]
    return list(reversed(paths))

  def _restore_one(self, path):
    """Restores `path`; False (and a warning) if it is unreadable."""
    try:
      restore(self.checkpoint, path)
    except UNREADABLE_CHECKPOINT as e:
      logging.warning("Checkpoint %s is unreadable (%s: %s); trying the one "
                      "before it.", path, type(e).__name__,
                      first_sentence(e))
      return False
    except (AssertionError, ValueError) as e:
      raise errors.UserError(
          f"{path} does not hold this experiment's variables (a different "
          f"configuration, or a checkpoint of l2t_tf before variables were "
          f"saved by name); start a new train_eval.model_dir. "
          f"{first_sentence(e)}") from e
    return True

  def restore(self):
    """Restores the newest readable checkpoint; returns its path or None.

    A checkpoint that cannot be read (truncated by a full disk or a kill
    during its save) is skipped with a warning for the one before it.

    Raises:
      UserError: there are checkpoints but none is readable, or they hold
        another experiment.
    """
    paths = self._paths()  # The chief's.
    path = next((p for p in paths if self._restore_one(p)), None)
    if paths and path is None:
      raise errors.UserError(
          f"no checkpoint in {self.directory} can be read "
          f"({len(paths)} tried); move that directory away to start again.")
    return path

  def save(self, number, before=None):
    """Saves as `ckpt-<number>`; the path, or None on a non-chief worker.

    `before()`, if given, runs first (the history), its write errors told
    as the checkpoint's.

    Raises:
      UserError: model_dir cannot be written (the last checkpoint saved is
        intact; the message says so).
    """
    try:
      if before is not None:
        before()
      path = self.manager.save(checkpoint_number=number)
      if not self.is_chief:
        tf.io.gfile.rmtree(self.manager.directory)
        return None
    except WRITE_ERRORS as e:
      raise errors.UserError(
          f"cannot write to {self.directory} ({type(e).__name__}: "
          f"{first_sentence(e)}); the last checkpoint saved, "
          f"{self.latest()}, is intact: free space or restore write access, "
          f"then run the same command again to resume from it.") from e
    return path
