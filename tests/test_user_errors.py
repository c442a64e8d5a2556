"""Every user mistake is one line "error: ..." on stderr and exit code 2.

A table of bad inputs, each with a fresh model_dir and at most 2 rounds (so
that a case that wrongly trains still ends soon). Every case is checked in
this process (`config.parse` then `train_eval`: a UserError whose one-line
form names the culprit), and the cases of each kind of mistake (one per
check: a Trainer argument, a configurable's argument, a gin parse error, a
misspelt parameter, an unusable model_dir) go through `python -m
l2t_tf.main` in subprocesses, two at a time: exit code 2, one line on
stderr, no "Traceback". With L2T_SLOW_TESTS=1 the whole table goes through
subprocesses. stderr is taken as it is: the package silences TensorFlow's
start-up lines (`tf_startup`), and none may precede the error. Every case
fails before the run starts, so none may leave its model_dir behind.
"""
import concurrent.futures
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from l2t_tf import checks
from l2t_tf import config
from l2t_tf import errors
from l2t_tf import main as main_lib
from l2t_tf import train_eval as train_eval_lib
from l2t_tf.students import pspnet

SLOW = bool(os.environ.get("L2T_SLOW_TESTS"))

FAST = ["Trainer.max_rounds = 2", "Trainer.teacher_epochs = 1",
        "Trainer.progress = False"]
READ_ONLY = "<read-only>"  # Replaced by a directory made read-only.
EMPTY = "<empty>"  # Replaced by a directory that does not exist.
SEGMENTATION = "train_eval.task = @SegmentationTask"

# (bindings, gin files, what the message must name). Later bindings win.
CASES = [
    (["Trainer.unroll_length = 'ten'"], [], "Trainer.unroll_length"),
    (["Trainer.unroll_length = 2.5"], [], "Trainer.unroll_length"),
    (["Trainer.batch_size = 2.5"], [], "Trainer.batch_size"),
    (["Trainer.validation_ratio = 'half'"], [], "Trainer.validation_ratio"),
    (["Trainer.teacher_epochs = None"], [], "Trainer.teacher_epochs"),
    (["Trainer.max_rounds = -1"], [], "Trainer.max_rounds"),
    (["Trainer.student_learning_rate = 'fast'"], [],
     "Trainer.student_learning_rate"),
    (["Trainer.student_learning_rate = 0"], [],
     "Trainer.student_learning_rate"),
    (["Trainer.checkpoint_every_rounds = 0"], [],
     "Trainer.checkpoint_every_rounds"),
    (["Trainer.eval_batch_size = 0"], [], "Trainer.eval_batch_size"),
    (["Trainer.update_guard = 'no'"], [], "Trainer.update_guard"),
    (["Trainer.validation_bn_mode = 'eval'"], [], "Trainer.validation_bn_mode"),
    (["TeacherUpdater.hidden_units = 64"], [], "TeacherUpdater.hidden_units"),
    (["ClassificationTask.dtype = 'float17'"], [], "ClassificationTask.dtype"),
    (["ClassificationTask.dln = @yolo_dln"], [], "ClassificationTask.dln"),
    ([SEGMENTATION, "SegmentationTask.crop_size = 'big'"], [],
     "SegmentationTask.crop_size"),
    (["ALAControllerUpdater.learning_rate = 'x'"], ["digits_ala.gin"],
     "ALAControllerUpdater.learning_rate"),
    (["Trainer.unroll_lenght = 3"], [], "unroll_lenght"),
    (["Trainer.unroll_length = ((2"], [],
     "bad gin configuration: --gin_bindings 'Trainer.unroll_length = ((2', "
     "line 1: a bracket left open"),
    ([f"ClassificationTask.data_dir = '{EMPTY}'",
      "ClassificationTask.dataset = 'cifar10'"], [], "'cifar10' is not "
     "prepared"),
    (["train_eval.model_dir = 'ram://l2t_run'"], [],
     "train_eval.model_dir = 'ram://l2t_run' is not on a local file system"),
    (["train_eval.model_dir = '/etc/hostname/run'"], [],
     "train_eval.model_dir"),
    (["train_eval.model_dir = ''"], [], "train_eval.model_dir"),
    ([f"train_eval.model_dir = '{READ_ONLY}/run'"], [],
     "train_eval.model_dir"),
]
if sys.platform.startswith("linux") and os.path.isdir("/sys/kernel"):
  # sysfs refuses new directories even to root (where chmod does not).
  CASES.append((["train_eval.model_dir = '/sys/l2t_tf_run'"], [],
                "train_eval.model_dir"))


def _read_only_directory(parent):
  """A directory made read-only, or None if writes still succeed (root)."""
  path = os.path.join(parent, "read_only")
  os.makedirs(path)
  os.chmod(path, 0o555)
  try:
    with open(os.path.join(path, "probe"), "w"):
      return None  # chmod does not stop this user (root).
  except PermissionError:
    return path


# The subprocess cases by default: one of each kind of check.
SUBPROCESS_CASES = ("Trainer.unroll_length = 'ten'",
                    "TeacherUpdater.hidden_units = 64",
                    "Trainer.unroll_lenght = 3", "Trainer.unroll_length = ((2",
                    "train_eval.model_dir = '/etc/hostname/run'",
                    "ClassificationTask.dataset = 'cifar10'")


def _cases(read_only, empty):
  """The table, with the read-only directory (dropped if there is none)."""
  if read_only is None:
    print("Skipped the read-only model_dir: this user (root) writes "
          "through chmod 0o555.")
  return [([b.replace(READ_ONLY, read_only or "").replace(EMPTY, empty)
            for b in bindings], gin_files, culprit)
          for bindings, gin_files, culprit in CASES
          if read_only or not any(READ_ONLY in b for b in bindings)]


def _run(bindings, gin_files, model_dir):
  command = [sys.executable, "-m", "l2t_tf.main"]
  command += [f"--gin_file={f}" for f in gin_files]
  command += [f"--gin_bindings={b}" for b in
              [f"train_eval.model_dir = '{model_dir}'"] + FAST + bindings]
  return subprocess.run(command, capture_output=True, text=True, timeout=300)


class UserErrorsTest(tf.test.TestCase):

  def test_each_bad_input_is_a_one_line_user_error_naming_it(self):
    base = self.get_temp_dir()
    for i, (bindings, gin_files, culprit) in enumerate(
        _cases(_read_only_directory(base), os.path.join(base, "no_data"))):
      with self.subTest(bindings=bindings):
        model_dir = os.path.join(base, f"run_{i}")
        with self.assertRaises(errors.UserError) as raised:
          config.parse(gin_files or [config.DEFAULT_GIN_FILE], [
              f"train_eval.model_dir = '{model_dir}'"] + FAST + bindings)
          train_eval_lib.train_eval()
        line = main_lib._one_line(raised.exception)  # pylint: disable=protected-access
        self.assertNotIn("\n", line)
        self.assertIn(culprit, line)
        self.assertFalse(os.path.exists(model_dir))

  def test_main_prints_one_error_line_and_exits_2(self):
    base = self.get_temp_dir()
    cases = [c for c in _cases(_read_only_directory(base),
                               os.path.join(base, "no_data"))
             if SLOW or c[0][-1] in SUBPROCESS_CASES]
    self.assertGreaterEqual(len(cases), len(SUBPROCESS_CASES))

    def run(i):
      bindings, gin_files, _ = cases[i]
      return _run(bindings, gin_files, os.path.join(base, f"run_{i}"))

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      outputs = list(pool.map(run, range(len(cases))))
    for i, ((bindings, _, culprit), out) in enumerate(zip(cases, outputs)):
      with self.subTest(bindings=bindings):
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        self.assertEqual(out.returncode, 2, out.stderr[-2000:])
        self.assertLen(lines, 1, out.stderr[-2000:])
        self.assertStartsWith(lines[0], "error: ")
        self.assertIn(culprit, lines[0])
        self.assertNotIn("Traceback", out.stderr + out.stdout)
        self.assertFalse(os.path.exists(os.path.join(base, f"run_{i}")))


class GinSyntaxErrorTest(tf.test.TestCase):
  """A bracket or a quote left open names its file or binding and line."""

  def _message(self, gin_files, bindings):
    with self.assertRaises(errors.UserError) as raised:
      config.parse(gin_files, bindings)
    one_line = main_lib._one_line  # pylint: disable=protected-access
    return one_line(raised.exception)

  def test_a_file_names_itself_and_the_line_of_the_bracket(self):
    for ending in ("", "Trainer.seed = 1\n"):  # gin stops at EOF, or line 3.
      with self.subTest(ending=ending):
        path = os.path.join(self.get_temp_dir(), "my.gin")
        with open(path, "w") as f:
          f.write("Trainer.unroll_length = 3\nTrainer.teacher_epochs = (2,\n"
                  + ending)
        self.assertEqual(
            self._message([config.DEFAULT_GIN_FILE, path], []),
            f"bad gin configuration: {path}, line 2: a bracket left open "
            "('(' never closed: EOF in multi-line statement).")

  def test_a_binding_names_itself(self):
    for later in ([], ["Trainer.seed = 1"]):
      with self.subTest(later=later):
        self.assertEqual(
            self._message([config.DEFAULT_GIN_FILE],
                          ["Trainer.unroll_length = [2"] + later),
            "bad gin configuration: --gin_bindings 'Trainer.unroll_length = "
            "[2', line 1: a bracket left open ('[' never closed: EOF in "
            "multi-line statement).")
    binding = "Trainer.seed = " + "'" * 3 + "x"
    self.assertIn(f"--gin_bindings {binding!r}, line 1: a quote left open",
                  self._message([], [binding]))


class ChecksTest(tf.test.TestCase):

  def test_integers_refuse_floats_strings_and_booleans(self):
    self.assertEqual(checks.integer("T.n", np.int64(3), 1), 3)
    self.assertIsNone(checks.integer("T.n", None, 1, optional=True))
    for bad in (2.5, 3.0, "3", True, 0, None):
      with self.subTest(value=bad), self.assertRaisesRegex(
          errors.UserError, r"^T\.n must be an integer >= 1, got "):
        checks.integer("T.n", bad, 1)

  def test_numbers_are_finite_and_in_their_interval(self):
    self.assertEqual(checks.number("T.r", np.float32(0.5), 0, 1), 0.5)
    self.assertEqual(checks.number("T.p", 1, 0, 1, (True, True)), 1.0)
    for bad in (0, 1, -0.1, float("nan"), float("inf"), "half", None, True):
      with self.subTest(value=bad), self.assertRaisesRegex(
          errors.UserError, r"T\.r must be a finite number in \(0, 1\)"):
        checks.number("T.r", bad, 0, 1)

  def test_flags_are_booleans(self):
    self.assertTrue(checks.boolean("T.f", np.bool_(True)))
    for bad in ("no", "False", 0, None):
      with self.subTest(value=bad), self.assertRaisesRegex(
          errors.UserError, "T.f must be True or False"):
        checks.boolean("T.f", bad)

  def test_a_read_only_model_dir_is_found_by_writing(self):
    read_only = _read_only_directory(self.get_temp_dir())
    if read_only is None:
      self.skipTest("this user (root) writes through chmod 0o555")
    with self.assertRaisesRegex(errors.UserError, "cannot|not a directory"):
      checks.writable_directory("train_eval.model_dir",
                                os.path.join(read_only, "run"))

  def test_a_run_directory_is_checked_without_being_created(self):
    path = os.path.join(self.get_temp_dir(), "new", "run")
    self.assertEqual(checks.run_directory("m", path), path)
    self.assertEqual(os.listdir(self.get_temp_dir()), [])
    with self.assertRaisesRegex(
        errors.UserError, r"^m = '/etc/hostname/run' is not a directory this "
        r"run can write to \(/etc/hostname is not a directory\)"):
      checks.run_directory("m", "/etc/hostname/run")

  def test_a_url_run_directory_is_refused(self):
    for url in ("ram://run", "gs://bucket/run"):
      with self.subTest(url), self.assertRaisesRegex(
          errors.UserError, f"^m = '{url}' is not on a local file system"):
        checks.run_directory("m", url)

  def test_a_writable_model_dir_is_created_and_left_clean(self):
    path = os.path.join(self.get_temp_dir(), "new", "run")
    self.assertEqual(checks.writable_directory("m", path), path)
    self.assertEqual(os.listdir(path), [])

  def test_call_names_a_factory_of_another_task(self):
    def head(feature_shapes, num_classes, dtype=None):
      return feature_shapes, num_classes, dtype
    with self.assertRaisesRegex(
        errors.UserError, "T.student = @head does not fit this task: it "
        "takes no argument input_shape; it needs feature_shapes"):
      checks.call("T.student", head, input_shape=(8, 8, 1), num_classes=10)

  def test_call_keeps_a_type_error_from_inside_the_factory(self):
    def student(input_shape, num_classes):
      return len(num_classes)  # A bug, not the user's.
    with self.assertRaises(TypeError) as raised:
      checks.call("T.student", student, input_shape=(8,), num_classes=10)
    self.assertNotIsInstance(raised.exception, errors.UserError)

  def test_pspnet_backbone_weights_that_are_not_weights(self):
    path = os.path.join(self.get_temp_dir(), "resnet50_notop.h5")
    with open(path, "w") as f:
      f.write("not HDF5")
    with self.assertRaisesRegex(errors.UserError,
                                "pspnet.backbone_weights = .*ResNet50"):
      pspnet.load_backbone_weights(keras.Sequential(), path, 50, 64)


if __name__ == "__main__":
  tf.test.main()
