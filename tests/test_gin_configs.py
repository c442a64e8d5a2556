"""Every shipped gin file parses and binds what its name says.

Parsing only (nothing is built): a renamed or misspelt argument fails here,
not hours into a run. Names: <dataset>_<student>[_ce].gin for Table 1,
ablation_cifar10_resnet8_{ratioP,unrollN,adam,sgd,rmsprop,lstm}.gin for
Tables 4-6.
"""
import glob
import os
import re

import gin
import tensorflow as tf

from l2t_tf import config
from l2t_tf import dln_updaters

GIN_FILES = config.packaged_gin_files()
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


class GinConfigsTest(tf.test.TestCase):

  def tearDown(self):
    gin.clear_config()
    super().tearDown()

  def test_gin_files_are_found_by_name_path_or_former_path(self):
    packaged = os.path.join(config.GIN_DIR, "cifar10_resnet8.gin")
    for name in ("cifar10_resnet8.gin", "gin_configs/cifar10_resnet8.gin",
                 "./gin_configs/cifar10_resnet8.gin", packaged):
      with self.subTest(name):
        self.assertEqual(config.resolve_gin_file(name), packaged)
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
        self.assertEqual(_query("Trainer.method", "l2t_dln"),
                         "baseline" if ce else "l2t_dln")
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
          self.assertEqual(_query("Trainer.hypergradient_mode", "unrolled"),
                           "reverse" if int(unroll) >= 50 else "unrolled")
        else:
          updater = gin.query_parameter("Trainer.updater")
          if variable == "lstm":
            self.assertEqual(_configurable_name(updater), "TeacherUpdater")
          else:
            self.assertEqual(_configurable_name(updater), "OptimizerUpdater")
            self.assertEqual(
                gin.query_parameter("OptimizerUpdater.optimizer"), variable)
            self.assertIn(variable, dln_updaters.OPTIMIZERS)


if __name__ == "__main__":
  tf.test.main()
