"""Imports TensorFlow without its start-up noise on a CPU machine.

Importing TensorFlow 2.21 writes C++ log lines to stderr before any line of
ours: absl's "All log messages before absl::InitializeLog() is called ..."
notice and the INFO lines it announces (the oneDNN notice, "Could not find
cuda drivers on your machine"), whatever TF_CPP_MIN_LOG_LEVEL says, and the
first device query logs "failed call to cuInit" as an ERROR on a machine
without a GPU. `import_tensorflow` imports TensorFlow and lists its physical
devices (that query; it does not initialise the runtime, so logical devices
and memory growth can still be configured) with file descriptor 2, which the
C++ code writes to, captured; then it writes back every captured line but
those (Python warnings and any other error pass through). On a GPU machine
whose driver fails, the cuInit error is dropped too and TensorFlow runs on
the CPU; TF_CPP_MIN_LOG_LEVEL=0 shows why. In a script that imported
TensorFlow (or Keras) first, what that import printed is not ours, but the
device query is still made here, captured: otherwise its cuInit line would
come from l2t_tf's first op (or the script's), not from its own import.

`drop_tensorflow_python_info` does the same for the INFO lines TensorFlow's
Python code logs through absl (checkpoint sharding, SavedModel fingerprints).

TF_CPP_MIN_LOG_LEVEL defaults to 2 (TensorFlow's INFO and WARNING lines
off). Set it to 0 or 1 to see everything TensorFlow says, these lines
included: nothing is captured or dropped then.
"""
import importlib
import logging
import os
import re
import sys
import tempfile

# C++ log lines: severity letter, MMDD, time, thread, file:line] message.
_CPP_LINE = r"[IWE]\d{4} [\d:. ]+\d+ \S+:\d+\] "
# ERRORs: no GPU (cuInit), and the GPU libraries' duplicate registrations.
_CUDA = r".*(failed call to cuInit|Unable to register cu(DNN|FFT|BLAS))"
_NOISE = re.compile("|".join([
    r"WARNING: All log messages before absl::InitializeLog\(\) is called",
    _CPP_LINE.replace("[IWE]", "[IW]"),  # INFO / WARNING: level 2 hides them.
    # cpu_feature_guard's INFO line continues on a second line.
    r"To enable the following instructions: ",
    _CPP_LINE.replace("[IWE]", "E") + _CUDA,
]))


# Python files of TensorFlow and Keras (not ours) that log INFO lines.
_LIBRARY_FILE = re.compile(r"[/\\](tensorflow|keras|tf_keras)[/\\]")


def tensorflow_logs_wanted():
  """True if TF_CPP_MIN_LOG_LEVEL asks for INFO or WARNING lines (0, 1)."""
  level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")
  try:
    return int(level) < 2
  except ValueError:
    return False


def is_noise(line):
  """Whether a captured stderr line is one of TensorFlow's start-up lines."""
  return bool(_NOISE.match(line))


def _import_and_list_devices():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.list_physical_devices()


def import_tensorflow():
  """Imports TensorFlow; its start-up lines are dropped unless wanted."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if tensorflow_logs_wanted():
    importlib.import_module("tensorflow")
    return
  try:
    saved = os.dup(2)
  except OSError:  # No stderr to capture.
    _import_and_list_devices()
    return
  with tempfile.TemporaryFile() as capture:
    sys.stderr.flush()
    os.dup2(capture.fileno(), 2)
    try:
      _import_and_list_devices()
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      lines = capture.read().decode(errors="replace").splitlines(True)
      sys.stderr.write("".join(l for l in lines if not is_noise(l)))
      sys.stderr.flush()


class _DropLibraryInfo(logging.Filter):
  """Passes warnings and errors, and INFO lines not from TF/Keras files."""

  def filter(self, record):
    return (record.levelno >= logging.WARNING or
            not _LIBRARY_FILE.search(record.pathname))


def drop_tensorflow_python_info(handler):
  """Drops TensorFlow's and Keras' own INFO lines at `handler`, if unwanted."""
  if not tensorflow_logs_wanted():
    handler.addFilter(_DropLibraryInfo())
