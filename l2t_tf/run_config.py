"""The configuration a run was made with, kept with its checkpoints.

A resumed run must be the same experiment: `check_resume` compares the
operative gin configuration (every parameter that configurables were called
with, `gin.config._OPERATIVE_CONFIG`) with the one saved in
`<model_dir>/checkpoints/run_config.json` when the run started, and a
difference in anything that changes results is a `UserError` listing each
differing binding. Parameters that only change bookkeeping (progress output,
where the run stops or saves, where data and outputs live, the strategy)
may differ. `override=True` (main's `--override_config`) resumes anyway,
saves the new configuration and returns the differences so that the
results can record them.
"""
import json
import os
import re

import gin
import tensorflow as tf

from l2t_tf import errors

FILE_NAME = "run_config.json"
#: Parameters that do not change what a run computes.
BOOKKEEPING = frozenset({
    "progress", "max_rounds", "checkpoint_every_rounds", "eval_batch_size",
    "model_dir", "data_dir", "manual_dir", "collective_timeout_s",
    "max_abs_loss"})
#: Configurables whose every parameter is bookkeeping.
BOOKKEEPING_CONFIGURABLES = frozenset({"get_strategy"})
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _format(value):
  """A stable text for a bound value (no memory addresses)."""
  if isinstance(value, type) or callable(value):
    name = getattr(value, "__qualname__", None) or type(value).__name__
    return f"@{getattr(value, '__module__', '')}.{name}"
  return _ADDRESS.sub("", repr(value))


def operative_bindings():
  """{'Configurable.parameter': value text} of everything gin bound so far."""
  bindings = {}
  for (scope, selector), parameters in gin.config._OPERATIVE_CONFIG.items():  # pylint: disable=protected-access
    name = selector.rsplit(".", 1)[-1]
    prefix = f"{scope}/{name}" if scope else name
    for parameter, value in parameters.items():
      bindings[f"{prefix}.{parameter}"] = _format(value)
  return dict(sorted(bindings.items()))


def _is_bookkeeping(binding):
  configurable, parameter = binding.rsplit(".", 1)
  return (parameter in BOOKKEEPING or
          configurable.rsplit("/", 1)[-1] in BOOKKEEPING_CONFIGURABLES)


def differences(saved, current):
  """[(binding, saved value, current value)] that change results."""
  names = sorted(set(saved) | set(current))
  return [(n, saved.get(n, "(unset)"), current.get(n, "(unset)"))
          for n in names if saved.get(n) != current.get(n) and
          not _is_bookkeeping(n)]


def path(checkpoint_dir):
  return os.path.join(checkpoint_dir, FILE_NAME)


def save(checkpoint_dir, bindings):
  """Writes `bindings` next to the checkpoints (atomically)."""
  tf.io.gfile.makedirs(checkpoint_dir)
  temporary = path(checkpoint_dir) + ".tmp"
  with tf.io.gfile.GFile(temporary, "w") as f:
    json.dump(bindings, f, indent=1, sort_keys=True)
  tf.io.gfile.rename(temporary, path(checkpoint_dir), overwrite=True)


def load(checkpoint_dir):
  """The saved bindings, or None if the run predates them."""
  if not tf.io.gfile.exists(path(checkpoint_dir)):
    return None
  with tf.io.gfile.GFile(path(checkpoint_dir)) as f:
    return json.load(f)


def _message(model_dir, diffs):
  shown = "; ".join(f"{n}: {old} -> {new}" for n, old, new in diffs[:8])
  more = f" (and {len(diffs) - 8} more)" if len(diffs) > 8 else ""
  return (f"train_eval.model_dir {model_dir!r} holds a run made with other "
          f"settings: {shown}{more}. Start a new run with another "
          f"train_eval.model_dir, or pass --override_config to resume it "
          f"with the new settings.")


def check_resume(model_dir, checkpoint_dir, resuming, override=False,
                 write=True):
  """Saves the configuration of a new run, checks that of a resumed one.

  Args:
    model_dir: the run's directory (for the message).
    checkpoint_dir: where the checkpoints and `run_config.json` are.
    resuming: whether a checkpoint exists (the run resumes).
    override: resume despite differences (they are returned).
    write: whether this process writes (the chief).

  Returns:
    The differences overridden, [(binding, saved, current)].

  Raises:
    UserError: the run resumes with different settings and not `override`.
  """
  current = operative_bindings()
  saved = load(checkpoint_dir) if resuming else None
  diffs = differences(saved, current) if saved is not None else []
  if diffs and not override:
    raise errors.UserError(_message(model_dir, diffs))
  if write and (saved is None or diffs):
    save(checkpoint_dir, current)
  return diffs
