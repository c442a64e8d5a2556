"""What ships and what CI runs: setup.py, MANIFEST.in, .ci/run, README."""
import ast
import glob
import os
import re
import unittest

import setuptools

from l2t_tf import config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
  with open(os.path.join(REPO, name)) as f:
    return f.read()


def _setup_keyword(name):
  """The literal value of keyword `name` of setup.py's setup() call."""
  for node in ast.walk(ast.parse(_read("setup.py"))):
    if isinstance(node, ast.keyword) and node.arg == name:
      return ast.literal_eval(node.value)
  raise AssertionError(f"setup.py has no {name}=")


class PackagingTest(unittest.TestCase):

  def test_package_data_ships_every_gin_file(self):
    source = _setup_keyword("package_dir")["l2t_tf.gin_configs"]
    patterns = _setup_keyword("package_data")["l2t_tf.gin_configs"]
    shipped = {path for pattern in patterns
               for path in glob.glob(os.path.join(REPO, source, pattern))}
    gin_files = config.packaged_gin_files()
    self.assertGreater(len(gin_files), 40)
    self.assertLessEqual(set(gin_files), shipped)
    self.assertIn("recursive-include gin_configs *.gin",
                  _read("MANIFEST.in"))

  def test_tools_are_entry_points_of_packaged_experiments(self):
    packages = setuptools.find_packages(REPO, include=["l2t_tf", "l2t_tf.*"])
    self.assertIn("l2t_tf.experiments", packages)
    self.assertIn('include=["l2t_tf", "l2t_tf.*"]', _read("setup.py"))
    tools = glob.glob(os.path.join(REPO, "tools", "*.py"))
    self.assertGreater(len(tools), 15)
    for path in tools:
      name = os.path.basename(path)
      self.assertTrue(os.path.isfile(os.path.join(
          REPO, "l2t_tf", "experiments", name)), name)
      self.assertIn(f"l2t_tf.experiments.{name[:-3]}",
                    _read(os.path.join("tools", name)))

  def test_ci_runs_exactly_readme_lint_and_test_commands(self):
    ci = [line for line in _read(".ci/run").splitlines()
          if line.startswith("python -m ") and " pip " not in line]
    blocks = re.findall(r"```bash\n(.*?)```", _read("README.md"), re.DOTALL)
    self.assertIn("\n".join(ci) + "\n", blocks)
    self.assertEqual(ci, ["python -m ruff check .", "python -m pytest tests"])

  def test_ruff_is_pinned_in_the_test_extra(self):
    test_extra = _setup_keyword("extras_require")["test"]
    self.assertTrue(any(re.fullmatch(r"ruff==[\d.]+", r) for r in test_extra),
                    test_extra)


if __name__ == "__main__":
  unittest.main()
