"""Gin set-up: parses gin files and bindings into clear, early errors.

Importing this module registers every configurable of the package, so a gin
file may bind any of them (and should also `import` the modules it
configures, Dopamine style). Unknown or misspelt names are errors
(`skip_unknown=False`) that name the parameter.
"""
import os

import gin

# Modules whose configurables gin files bind; imported for registration.
from l2t_tf import baselines  # pylint: disable=unused-import
from l2t_tf import dln  # pylint: disable=unused-import
from l2t_tf import dln_updaters  # pylint: disable=unused-import
from l2t_tf import strategy  # pylint: disable=unused-import
from l2t_tf import train_eval  # pylint: disable=unused-import
from l2t_tf import trainer  # pylint: disable=unused-import
from l2t_tf.errors import UserError
from l2t_tf.students import cifar_resnet  # pylint: disable=unused-import
from l2t_tf.students import digits_cnn  # pylint: disable=unused-import
from l2t_tf.students import pspnet  # pylint: disable=unused-import
from l2t_tf.students import nasnet  # pylint: disable=unused-import
from l2t_tf.students import wide_resnet  # pylint: disable=unused-import
from l2t_tf.students import yolov3  # pylint: disable=unused-import
from l2t_tf.tasks import classification  # pylint: disable=unused-import
from l2t_tf.tasks import detection  # pylint: disable=unused-import
from l2t_tf.tasks import segmentation  # pylint: disable=unused-import

from l2t_tf import hypergradient

gin.external_configurable(hypergradient.sparse_cross_entropy, "cross_entropy")

REPO_GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "gin_configs")
DEFAULT_GIN_FILE = os.path.join(REPO_GIN_DIR, "digits_l2t_dln.gin")


def parse(gin_files=(), gin_bindings=()):
  """Parses gin files then bindings; raises UserError naming the problem."""
  gin.clear_config()
  if os.path.isdir(REPO_GIN_DIR):
    gin.add_config_file_search_path(REPO_GIN_DIR)
  for path in gin_files:
    if not os.path.exists(path) and not os.path.exists(
        os.path.join(REPO_GIN_DIR, path)):
      raise UserError(f"--gin_file: no such file {path!r}.")
  try:
    gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings),
                                        skip_unknown=False)
  except (ValueError, KeyError, ImportError, SyntaxError) as e:
    raise UserError(f"bad gin configuration: {e}") from e
