"""Every shipped gin file parses and binds what its name says.

Parsing only (nothing is built): a renamed or misspelt argument fails here,
not hours into a run. Names: <dataset>_<student>[_ce].gin for Table 1,
ablation_cifar10_resnet8_{ratioP,unrollN,adam,sgd,rmsprop,lstm}.gin for
Tables 4-6. A file that varies another `include`s it and binds only what
differs; what differs is asserted here (a CE twin only in its method).
"""
import inspect
import os
import re
import subprocess
import sys

import gin
import tensorflow as tf

from l2t_tf import build
from l2t_tf import config
from l2t_tf import dln_updaters
from l2t_tf import experiment

GIN_FILES = config.packaged_gin_files()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = re.compile(r"^include '([^']+)'$", re.MULTILINE)
MODEL_DIR = "train_eval.model_dir"
TABLE1 = re.compile(r"^(cifar10|cifar100|imagenet)_(resnet\d+|wrn|nasnet)(_ce)?$")
ABLATION = re.compile(r"^ablation_cifar10_resnet8_(ratio(\d+)|unroll(\d+)|"
                      r"adam|sgd|rmsprop|lstm)$")
DATASET = {"cifar10": "cifar10", "cifar100": "cifar100",
           "imagenet": "imagenet2012"}
STUDENT = {"wrn": "wide_resnet", "nasnet": "nasnet"}


def _query(name, default=None):
  try:
    return gin.query_parameter(name)
  except ValueError:
    return default


def _configurable_name(reference):
  return reference.selector.split(".")[-1]


def _bindings(name):
  """{'Configurable.param': value text} after parsing packaged file `name`."""
  config.parse([name])
  lines = gin.config_str(max_line_length=10**6).splitlines()
  pairs = (line.split(" = ", 1) for line in lines
           if line and not line.startswith("#"))
  return dict(pairs)


def _includes(name):
  """Names of the packaged files `name` includes, directly or not."""
  with open(os.path.join(config.GIN_DIR, name)) as f:
    direct = INCLUDE.findall(f.read())
  return set(direct).union(*(_includes(n) for n in direct))


def _differences(a, b):
  """Binding names whose values differ between dicts a and b."""
  return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


class GinConfigsTest(tf.test.TestCase):

  def tearDown(self):
    gin.clear_config()
    super().tearDown()

  def test_gin_files_are_found_by_name_path_or_former_path(self):
    packaged = os.path.join(config.GIN_DIR, "cifar10_resnet8.gin")
    for name in ("cifar10_resnet8.gin", "gin_configs/cifar10_resnet8.gin",
                 "./gin_configs/cifar10_resnet8.gin", packaged):
      with self.subTest(name):
        # From the repository's root a relative path names the same file.
        self.assertEqual(os.path.realpath(config.resolve_gin_file(name)),
                         os.path.realpath(packaged))
    own = os.path.join(self.get_temp_dir(), "cifar10_resnet8.gin")
    with open(own, "w") as f:
      f.write("include 'cifar10_resnet8.gin'\ncifar_resnet.depth = 14\n")
    self.assertEqual(config.resolve_gin_file(own), own)  # A path wins.
    config.parse([own])  # Its include is found on the search path.
    self.assertEqual(gin.query_parameter("cifar_resnet.depth"), 14)
    for missing in ("no_such.gin", "elsewhere/cifar10_resnet8.gin"):
      with self.assertRaisesRegex(config.UserError, "no such file"):
        config.resolve_gin_file(missing)

  def test_every_table_cell_has_its_files(self):
    names = {os.path.basename(f)[:-4] for f in GIN_FILES}
    for dataset in ("cifar10", "cifar100"):
      for student in ("resnet8", "resnet20", "resnet32", "wrn"):
        self.assertIn(f"{dataset}_{student}", names)
        self.assertIn(f"{dataset}_{student}_ce", names)
    self.assertIn("imagenet_nasnet", names)
    self.assertIn("imagenet_nasnet_ce", names)
    for suffix in ("ratio10", "ratio25", "ratio50", "ratio75", "ratio90",
                   "unroll1", "unroll5", "unroll10", "unroll15", "unroll25",
                   "unroll50", "unroll75", "adam", "sgd", "rmsprop", "lstm"):
      self.assertIn(f"ablation_cifar10_resnet8_{suffix}", names)

  def test_every_file_parses(self):
    self.assertGreater(len(GIN_FILES), 30)
    for path in GIN_FILES:
      with self.subTest(os.path.basename(path)):
        config.parse([path])  # Raises UserError on any unknown name.

  def test_no_gin_file_imports_modules(self):
    # config.py registers every configurable; the files hold bindings only.
    for path in GIN_FILES:
      with open(path) as f:
        self.assertNotRegex(f.read(), r"(?m)^import ", path)

  def test_no_gin_file_copies_another_instead_of_including_it(self):
    names = [os.path.basename(p) for p in GIN_FILES]
    bindings = {n: _bindings(n) for n in names}
    bases = [n for n in names if not _includes(n)]  # Variants may share.
    for name in names:
      for other in bases:
        base = {k: v for k, v in bindings[other].items() if k != MODEL_DIR}
        if other == name or not base.items() <= bindings[name].items():
          continue
        with self.subTest(f"{name} has {other}'s bindings"):
          self.assertIn(other, _includes(name))

  def test_baseline_twins_differ_only_in_method_and_model_dir(self):
    twins = {os.path.basename(p) for p in GIN_FILES if p.endswith("_ce.gin")}
    twins = {n: n[:-len("_ce.gin")] + ".gin" for n in twins
             if not n.startswith("digits_")}
    twins["yolov3_coco_fixed_loss.gin"] = "yolov3_coco.gin"
    self.assertLen(twins, 9 + 1 + 1)  # Table 1, PSPNet, YOLOv3.
    for name, twin in twins.items():
      with self.subTest(name):
        baseline = _bindings(name)
        self.assertEqual(_differences(baseline, _bindings(twin)),
                         {MODEL_DIR, "build.round"})
        self.assertEqual(baseline["build.round"], "@FixedLossRound")
        self.assertIn(twin, _includes(name))

  def test_ablations_differ_from_cifar10_resnet8_in_their_variable(self):
    base = _bindings("cifar10_resnet8.gin")
    for path in GIN_FILES:
      match = ABLATION.match(os.path.basename(path)[:-4])
      if not match:
        continue
      variable, ratio, unroll = match.groups()
      if ratio:
        expected = {"Trainer.validation_ratio"}
      elif unroll:
        expected = {"Trainer.unroll_length"} | (
            {"L2TRound.hypergradient_mode"} if int(unroll) >= 50 else set())
      elif variable == "lstm":
        expected = {"build.round", "L2TRound.updater"}
      else:
        expected = {"build.round", "HypergradientRound.updater",
                    "OptimizerUpdater.optimizer"}
      with self.subTest(variable):
        self.assertEqual(_differences(_bindings(path), base),
                         expected | {MODEL_DIR})

  def test_digits_baselines_differ_from_ce_only_in_the_loss(self):
    ce = _bindings("digits_ce.gin")
    for name in ("arlf", "lsoftmax", "slf", "smooth01"):
      with self.subTest(name):
        extra = {"ClassificationTask.student"} if name == "lsoftmax" else set()
        self.assertEqual(
            _differences(_bindings(f"digits_{name}.gin"), ce),
            {MODEL_DIR, "ClassificationTask.fixed_loss"} | extra)

  def test_names_and_includes_resolve_from_any_directory(self):
    # A fresh interpreter elsewhere: bare and former names, and the include
    # inside (through gin's search path, not the working directory).
    code = ("import gin; from l2t_tf import config; "
            "config.parse(['gin_configs/cifar10_resnet8_ce.gin']); "
            "print(gin.query_parameter('cifar_resnet.depth')); "
            "config.parse(['pspnet_voc_ce.gin']); "
            "print(gin.query_parameter('pspnet.depth'))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=300, cwd=self.get_temp_dir(),
                         env=env, check=False)
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    self.assertEqual(out.stdout.split(), ["8", "50"])
    self.assertNotIn("Path not found", out.stderr)

  def test_classification_files_name_their_model_dir(self):
    for path in GIN_FILES:
      name = os.path.basename(path)[:-4]
      if not (TABLE1.match(name) or ABLATION.match(name)):
        continue
      with self.subTest(name):
        config.parse([path])
        self.assertEqual(gin.query_parameter("train_eval.model_dir"),
                         f"runs/{name}")

  def test_table1_files_bind_dataset_student_and_method(self):
    for path in GIN_FILES:
      name = os.path.basename(path)[:-4]
      match = TABLE1.match(name)
      if not match:
        continue
      dataset, student, ce = match.groups()
      with self.subTest(name):
        config.parse([path])
        self.assertEqual(gin.query_parameter("ClassificationTask.dataset"),
                         DATASET[dataset])
        student_ref = gin.query_parameter("ClassificationTask.student")
        self.assertEqual(_configurable_name(student_ref),
                         STUDENT.get(student, "cifar_resnet"))
        if student.startswith("resnet"):
          self.assertEqual(gin.query_parameter("cifar_resnet.depth"),
                           int(student[len("resnet"):]))
        round_ = _query("build.round")  # None: L2TRound, the default.
        self.assertEqual(round_ and _configurable_name(round_),
                         "FixedLossRound" if ce else None)
        if student in ("wrn", "nasnet") and not ce:  # Unrolled: out of memory.
          self.assertEqual(_query("L2TRound.hypergradient_mode"), "reverse")
        # Paper settings are the Trainer's defaults: nothing overrides them.
        for param in ("unroll_length", "teacher_epochs", "validation_ratio",
                      "batch_size", "validation_batch_size",
                      "student_learning_rate"):
          self.assertIsNone(_query(f"Trainer.{param}"), param)

  def test_ablation_files_bind_their_variable(self):
    for path in GIN_FILES:
      name = os.path.basename(path)[:-4]
      match = ABLATION.match(name)
      if not match:
        continue
      variable, ratio, unroll = match.groups()
      with self.subTest(name):
        config.parse([path])
        self.assertEqual(gin.query_parameter("ClassificationTask.dataset"),
                         "cifar10")
        self.assertEqual(gin.query_parameter("cifar_resnet.depth"), 8)
        if ratio:
          self.assertAlmostEqual(
              gin.query_parameter("Trainer.validation_ratio"),
              int(ratio) / 100)
        elif unroll:
          self.assertEqual(gin.query_parameter("Trainer.unroll_length"),
                           int(unroll))
          self.assertEqual(_query("L2TRound.hypergradient_mode", "unrolled"),
                           "reverse" if int(unroll) >= 50 else "unrolled")
        else:
          round_ = _configurable_name(gin.query_parameter("build.round"))
          if variable == "lstm":
            updater = gin.query_parameter("L2TRound.updater")
            self.assertEqual(round_, "L2TRound")
            self.assertEqual(_configurable_name(updater), "TeacherUpdater")
          else:
            updater = gin.query_parameter("HypergradientRound.updater")
            self.assertEqual(round_, "HypergradientRound")
            self.assertEqual(_configurable_name(updater), "OptimizerUpdater")
            self.assertEqual(
                gin.query_parameter("OptimizerUpdater.optimizer"), variable)
            self.assertIn(variable, dln_updaters.OPTIMIZERS)


if __name__ == "__main__":
  tf.test.main()


PRE24 = os.path.join(REPO, "tests", "fixtures", "gin_pre24")


def _effective_round():
  """(round class name, {option: value text}) the parsed config gives.

  The round bound (`build.round`) or the one the older `Trainer` bindings
  choose, with each option's value: set on `Trainer` (the older way), else
  bound on the round, else the round's default.
  """
  settings = build.Settings()
  passed = {k for k in experiment.ROUND_OPTIONS
            if _query(f"Trainer.{k}", _UNSET) is not _UNSET}
  bound = _query("build.round")
  round_class, options = experiment.resolve_round(
      bound and bound.configurable.wrapped, settings.method,
      **{k: v for k, v in settings.round_options(passed).items()})
  options.pop("configurable", None)
  parameters = inspect.signature(round_class).parameters
  name = round_class.__name__
  effective = {}
  for option, parameter in parameters.items():
    if option in ("parts", "configurable"):
      continue
    value = options.get(option, _query(f"{name}.{option}", parameter.default))
    effective[option] = (_configurable_name(value)
                         if hasattr(value, "selector") else
                         getattr(value, "__name__", value))
  return name, effective


_UNSET = object()


class OlderBindingsTest(tf.test.TestCase):
  """Issue 24: a gin file written before the round was bound in gin runs
  the same round with the same options as its packaged successor."""

  def test_every_migrated_file_resolves_as_before(self):
    names = sorted(os.listdir(PRE24))
    self.assertLen(names, 27)
    for name in names:
      with self.subTest(name):
        gin.clear_config()
        config.parse([os.path.join(PRE24, name)])
        before = _effective_round()
        gin.clear_config()
        config.parse([name])
        self.assertEqual(_effective_round(), before)
    gin.clear_config()
