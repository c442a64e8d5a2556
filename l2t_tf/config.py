"""Gin set-up: parses gin files and bindings into clear, early errors.

Importing this module registers every configurable of the package (the one
place that does; the shipped gin files have no `import` lines), so a gin
file may bind any of them. Unknown or misspelt names are errors
(`skip_unknown=False`) that name the parameter.

The experiments' gin files live in the repository's top-level `gin_configs/`
and ship inside the package as `l2t_tf/gin_configs` (setup.py maps one onto
the other), so they are found by name from any directory, installed or not:
`--gin_file=cifar10_resnet8.gin`. A path that exists
(`--gin_file=my/own.gin`) is used as it is; `gin_configs/<name>.gin` names
the packaged file from any directory too.
The packaged directory is on gin's search path, so a gin file (shipped or
one's own) can `include 'cifar10_resnet8.gin'` and bind only what differs.

`help_text` is `python -m l2t_tf.main --help`: the usage, the flags, the
packaged gin files and the main knobs (`MAIN_KNOBS`).
"""
import contextlib
import io
import logging
import os
import textwrap
import tokenize

import gin

from l2t_tf import build
from l2t_tf import related_methods
from l2t_tf import dln
from l2t_tf import dln_updaters
from l2t_tf import hypergradient
from l2t_tf import rounds
from l2t_tf import strategy
from l2t_tf import train_eval
from l2t_tf.errors import UserError
from l2t_tf.students import cifar_resnet
from l2t_tf.students import digits_cnn
from l2t_tf.students import nasnet
from l2t_tf.students import pspnet
from l2t_tf.students import wide_resnet
from l2t_tf.students import yolov3
from l2t_tf.tasks import classification
from l2t_tf.tasks import detection
from l2t_tf.tasks import segmentation
from l2t_tf.tasks import supervised

# The modules whose configurables gin files bind, imported for registration
# (their import registers them; they are not used here otherwise).
REGISTERED_MODULES = (build, related_methods, dln, dln_updaters, rounds,
                      strategy, train_eval, cifar_resnet, digits_cnn, nasnet, pspnet,
                      wide_resnet, yolov3, classification, detection,
                      segmentation, supervised)

gin.external_configurable(hypergradient.sparse_cross_entropy, "cross_entropy")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _gin_dir():
  """Installed: <package>/gin_configs; a source checkout: <repo>/gin_configs."""
  installed = os.path.join(_PACKAGE_DIR, "gin_configs")
  if os.path.isdir(installed):
    return installed
  return os.path.join(os.path.dirname(_PACKAGE_DIR), "gin_configs")


GIN_DIR = _gin_dir()
DEFAULT_GIN_FILE = os.path.join(GIN_DIR, "digits_l2t_dln.gin")
# Directory parts of a --gin_file that name the packaged directory: none
# (a bare name) or the repository's top-level `gin_configs/`.
_PACKAGED_DIR_NAMES = ("", ".", "gin_configs")

_search_path_added = False


def resolve_gin_file(path):
  """The file `--gin_file=path` names: `path` if it exists, else packaged.

  Raises:
    UserError: neither `path` nor a packaged file of that name exists.
  """
  if os.path.isfile(path):
    return path
  head, name = os.path.split(path)
  packaged = os.path.join(GIN_DIR, name)
  if os.path.normpath(head or ".") in _PACKAGED_DIR_NAMES and os.path.isfile(
      packaged):
    return packaged
  raise UserError(f"--gin_file: no such file {path!r}, nor a packaged gin "
                  f"file of that name (they are in {GIN_DIR}).")


def packaged_gin_files():
  """Sorted paths of the gin files shipped with the package."""
  return sorted(os.path.join(GIN_DIR, name) for name in os.listdir(GIN_DIR)
                if name.endswith(".gin"))


class _DropGinLookupLogs(logging.Filter):
  """Drops gin's resource-reader lines ("Path not found: x.gin").

  gin tries an `include`d name as a Python resource before the search path
  (where it is found) and logs each miss on the root logger.
  """

  def filter(self, record):
    return not record.pathname.endswith(
        os.path.join("gin", "resource_reader.py"))


@contextlib.contextmanager
def _quiet_gin_lookups():
  drop = _DropGinLookupLogs()
  logging.getLogger().addFilter(drop)
  try:
    yield
  finally:
    logging.getLogger().removeFilter(drop)


def _add_search_path():
  """Puts the packaged gin directory on gin's search path, once."""
  global _search_path_added
  if not _search_path_added:
    gin.add_config_file_search_path(GIN_DIR)
    _search_path_added = True


def parse(gin_files=(), gin_bindings=()):
  """Parses gin files then bindings; raises UserError naming the problem.

  A bracket or a quote left open is named with its file (or binding) and
  line (`_left_open`): gin's own message then names none, or the line
  where it gave up.

  Args:
    gin_files: paths or names of packaged gin files (`resolve_gin_file`).
    gin_bindings: binding strings, applied after the files.
  """
  gin.clear_config()
  _add_search_path()
  paths = [resolve_gin_file(path) for path in gin_files]
  try:
    with _quiet_gin_lookups():
      gin.parse_config_files_and_bindings(paths, list(gin_bindings),
                                          skip_unknown=False)
  except (tokenize.TokenError, SyntaxError) as e:  # TokenError: ( without ).
    raise UserError("bad gin configuration: " + _left_open(
        list(zip(gin_files, paths)), gin_bindings, e)) from e
  except (ValueError, KeyError, ImportError, OSError) as e:
    raise UserError(f"bad gin configuration: {e}") from e


def _left_open(files, bindings, error):
  """Where a bracket or a quote is left open, or `error`'s own message.

  Args:
    files: (name as given, path) of each gin file, in parsing order.
    bindings: the binding strings, parsed after the files.
    error: gin's error.
  """
  texts = [(name, _read(path)) for name, path in files]
  texts += [(f"--gin_bindings {b!r}", b) for b in bindings]
  for name, text in texts:
    problem = _open_bracket_or_quote(text)
    if problem is not None:
      line, what = problem
      return f"{name}, line {line}: {what}."
  if isinstance(error, tokenize.TokenError):  # Not found (an `include`d file).
    return f"{error.args[0]} (a bracket or a quote left open?)"
  return str(error)


def _read(path):
  try:
    with open(path, encoding="utf-8") as f:
      return f.read()
  except (OSError, UnicodeDecodeError):
    return ""


def _open_bracket_or_quote(text):
  """(line, what) of a bracket or a quote `text` leaves open, else None.

  Python's tokenizer (gin's) fails at the end of `text` then; the line is
  that of the innermost bracket still open, or where the string starts.
  """
  opened = []  # Lines of the brackets open so far.
  try:
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
      if token.type == tokenize.OP and token.string in ("(", "[", "{"):
        opened.append((token.string, token.start[0]))
      elif token.type == tokenize.OP and token.string in (")", "]", "}"):
        opened = opened[:-1]  # Matched or not: as the tokenizer counts.
  except tokenize.TokenError as e:
    message, (line, _) = e.args
    if opened and "statement" in message:
      bracket, line = opened[-1]
      return line, f"a bracket left open ({bracket!r} never closed: {message})"
    what = "a quote" if "string" in message else "a bracket or a quote"
    return line, f"{what} left open ({message})"
  return None


#: The settings most runs change: (binding, what it sets).
MAIN_KNOBS = (
    ("Trainer.unroll_length", "N, student steps unrolled per round"),
    ("Trainer.teacher_epochs", "teacher epochs, each a pass over validation"),
    ("Trainer.validation_ratio", "share of the training set that validates"),
    ("Trainer.batch_size", "the student's training batch"),
    ("Trainer.validation_batch_size", "the batch e_val is measured on"),
    ("Trainer.student_learning_rate", "the student's SGD step"),
    ("build.round", "the method: @L2TRound, @FixedLossRound, ..."),
    ("L2TRound.hypergradient_mode", "'unrolled', or 'reverse' (memory flat)"),
    ("L2TRound.stage3", "'paper' or 'release' (the authors' code)"),
    ("Trainer.seed", "splits, shuffles and initial weights"),
    ("train_eval.model_dir", "the run's directory (runs resume there)"),
    ("get_strategy.name", "'default', 'mirrored' or 'multi_worker'"),
)


def help_text(usage, flags_help):
  """`--help`: `usage`, `flags_help`, the packaged gin files, the knobs."""
  names = ", ".join(os.path.basename(p) for p in packaged_gin_files())
  width = max(len(name) for name, _ in MAIN_KNOBS)
  knobs = [f"  {name:<{width}}  {what}" for name, what in MAIN_KNOBS]
  return "\n".join([
      usage.strip(), "", "Flags:", flags_help.rstrip(), "",
      f"Packaged gin files (--gin_file=NAME, in {GIN_DIR}):",
      textwrap.fill(names, 79, initial_indent="  ", subsequent_indent="  "),
      "", "Main knobs (--gin_bindings='NAME = VALUE'; the gin file sets them):",
      *knobs, "", "Every value a run used: <model_dir>/operative_config.gin."])
