"""Checks of the values a user gives: a wrong one is a one-line UserError.

Each check takes the binding as the user writes it (`Trainer.batch_size`)
and its value, returns the value (an int, a float, ...) and otherwise
raises `errors.UserError` saying what is expected:

  Trainer.batch_size must be an integer >= 1, got 2.5.

Values are checked where they enter (the Trainer, the tasks, the updaters),
so that a mistake stops the run before anything is built, and a value
TensorFlow would take silently (a float unroll length, a negative
`max_rounds`, a string where a flag is meant) is refused too. Booleans are
not numbers here (`True` is no unroll length).

Also: `call` builds a model from a bound factory and names the binding if
the factory is of another task; `run_directory` checks, without creating
it, that a model_dir can be made (local, its nearest existing directory
writable); `writable_directory` creates it and checks it by writing into it.
"""
import inspect
import math
import numbers
import os
import re
import tempfile
import uuid

import gin
import numpy as np
import tensorflow as tf

from l2t_tf import errors


def fail(binding, expected, value):
  """Raises the UserError "<binding> must be <expected>, got <value>."."""
  raise errors.UserError(f"{binding} must be {expected}, got {value!r}.")


def _is_integer(value):
  return isinstance(value, numbers.Integral) and not isinstance(
      value, (bool, np.bool_))


def _is_number(value):
  return (isinstance(value, numbers.Real) and
          not isinstance(value, (bool, np.bool_)) and math.isfinite(value))


def integer(binding, value, minimum=None, optional=False, maximum=None):
  """`value` as an int in [minimum, maximum] (None allowed if optional)."""
  if optional and value is None:
    return None
  if not _is_integer(value) or not _within(value, minimum, maximum):
    expected = "an integer" + _interval(minimum, maximum, (True, True))
    fail(binding, expected + (" or None" if optional else ""), value)
  return int(value)


def _within(value, minimum, maximum):
  return ((minimum is None or value >= minimum) and
          (maximum is None or value <= maximum))


def _interval(lower, upper, closed):
  if lower is not None and upper is not None:
    return (f" in {'[' if closed[0] else '('}{lower}, "
            f"{upper}{']' if closed[1] else ')'}")
  if lower is not None:
    return f" {'>=' if closed[0] else '>'} {lower}"
  if upper is not None:
    return f" {'<=' if closed[1] else '<'} {upper}"
  return ""


def number(binding, value, lower=None, upper=None, closed=(False, False),
           optional=False):
  """`value` as a finite float between `lower` and `upper` (if given).

  Args:
    binding: the binding's name, e.g. 'Trainer.validation_ratio'.
    value: the value to check.
    lower, upper: bounds, or None for none.
    closed: whether (lower, upper) belong to the allowed interval.
    optional: whether None is allowed (and returned).
  """
  if optional and value is None:
    return None
  ok = _is_number(value)
  if ok and lower is not None:
    ok = value >= lower if closed[0] else value > lower
  if ok and upper is not None:
    ok = value <= upper if closed[1] else value < upper
  if not ok:
    fail(binding, "a finite number" + _interval(lower, upper, closed) +
         (" or None" if optional else ""), value)
  return float(value)


def boolean(binding, value):
  """`value` as a bool; True or False only (not 'no', not 0)."""
  if not isinstance(value, (bool, np.bool_)):
    fail(binding, "True or False", value)
  return bool(value)


def one_of(binding, value, choices):
  """`value` if it is in `choices`."""
  if value not in choices:
    fail(binding, f"one of {tuple(choices)}", value)
  return value


def integers(binding, values, minimum=1):
  """`values` (a tuple or list of integers >= minimum) as a tuple of ints."""
  if not isinstance(values, (tuple, list)) or not all(
      _is_integer(v) and v >= minimum for v in values):
    fail(binding, f"a tuple of integers >= {minimum}", values)
  return tuple(int(v) for v in values)


def number_range(binding, values):
  """A (low, high) pair of finite numbers > 0 with low <= high, as floats."""
  if (not isinstance(values, (tuple, list)) or len(values) != 2 or
      not all(_is_number(v) and v > 0 for v in values) or
      values[0] > values[1]):
    fail(binding, "a pair (low, high) of numbers > 0 with low <= high",
         values)
  return tuple(float(v) for v in values)


def float_dtype(binding, dtype):
  """`dtype` if it is None or names a floating dtype ('float32', ...)."""
  try:
    ok = dtype is None or tf.as_dtype(dtype).is_floating
  except (TypeError, ValueError):
    ok = False
  if not ok:
    fail(binding, "None or a float dtype such as 'float32' or 'float64'",
         dtype)
  return dtype


def call(binding, factory, **kwargs):
  """`factory(**kwargs)`; a factory that cannot take them is a UserError.

  For a model factory bound to another task (`ClassificationTask.student =
  @yolov3_head`): Python's TypeError stays as it is when the signature takes
  `kwargs` (and gin's values), i.e. when it comes from inside the factory.
  """
  try:
    return factory(**kwargs)
  except TypeError as e:
    problem = _signature_problem(factory, kwargs)
    if problem is None:
      raise
    name = getattr(factory, "__name__", repr(factory))
    raise errors.UserError(
        f"{binding} = @{name} does not fit this task: {problem} (it is "
        f"called with {', '.join(sorted(kwargs))}).") from e


def _signature_problem(factory, kwargs):
  """What `factory`'s signature lacks or misses for `kwargs`, or None."""
  try:
    parameters = inspect.signature(factory).parameters
  except (TypeError, ValueError):
    return None
  kinds = {p.kind for p in parameters.values()}
  unexpected = [] if inspect.Parameter.VAR_KEYWORD in kinds else [
      k for k in kwargs if k not in parameters]
  name = getattr(factory, "__name__", "")
  missing = [k for k, p in parameters.items()
             if p.default is p.empty and k not in kwargs and
             p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and
             not _gin_bound(f"{name}.{k}")]
  problems = ([f"it takes no argument {', '.join(unexpected)}"]
              if unexpected else [])
  problems += [f"it needs {', '.join(missing)}"] if missing else []
  return "; ".join(problems) or None


def _gin_bound(parameter):
  try:
    gin.query_parameter(parameter)
  except ValueError:
    return False
  return True


# A URL: gs://bucket/run, ram://run, hdfs://...
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _directory_path(binding, path):
  """`path` as a str; a UserError if it is no non-empty path."""
  if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
    fail(binding, "a non-empty directory path", path)
  return os.fspath(path)


def _not_writable(binding, path, reason):
  return errors.UserError(
      f"{binding} = {path!r} is not a directory this run can write to "
      f"({first_line(reason)}); give another one.")


def _nearest_existing(path):
  """`path` or its nearest ancestor that exists (as an absolute path)."""
  path = os.path.abspath(path)
  while not os.path.exists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  return path


def run_directory(binding, path):
  """Checks that directory `path` can be made for a run; creates nothing.

  `path` must be local (l2t_tf locks a run with a local file, `run_lock`,
  and creates its directory with `os`): a URL (`gs://`, `ram://`) is
  refused. Its nearest existing directory (itself if it exists) must be a
  directory this process can write to, tried by writing a file there and
  deleting it. Nothing else is left behind: a run that fails before it
  starts leaves no directory.

  Returns:
    `path`.
  """
  path = _directory_path(binding, path)
  if _URL.match(path):
    raise errors.UserError(
        f"{binding} = {path!r} is not on a local file system: l2t_tf locks "
        f"and writes its runs through local files; use a local or mounted "
        f"directory (NFS, gcsfuse).")
  existing = _nearest_existing(path)
  if not os.path.isdir(existing):
    raise _not_writable(binding, path, f"{existing} is not a directory")
  try:
    with tempfile.NamedTemporaryFile(dir=existing, prefix=".write_check_"):
      pass  # Deleted on closing.
  except OSError as e:
    raise _not_writable(binding, path,
                        f"cannot write in {existing}: {e.strerror}") from e
  return path


def writable_directory(binding, path):
  """Creates directory `path` if needed and checks a file can be written.

  Writing is tried (a file created and deleted), not inferred from
  permissions, which do not stop root.

  Returns:
    `path`.
  """
  path = _directory_path(binding, path)
  probe = os.path.join(path, f".write_check_{uuid.uuid4().hex}")
  try:
    tf.io.gfile.makedirs(path)
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("")
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as e:
    reason = e.message if isinstance(e, tf.errors.OpError) else e.strerror
    raise _not_writable(binding, path, reason) from e
  return path


def first_line(text, limit=200):
  """The first line of `text` (e.g. a long library error), at most `limit`."""
  return (str(text).strip().splitlines() or [""])[0][:limit]
