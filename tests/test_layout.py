"""The tests' layout (docs/tests.md): a module's tests are found by its name.

tests/ mirrors the package: the tests of l2t_tf/<path>/<module>.py are in
tests/<path>/test_<module>.py, those of a subpackage's own `__init__` in
tests/<path>/test_<subpackage>.py; a slow aspect of a module that runs apart
(subprocesses, PyTorch) is test_<module>_<aspect>.py next to it. The suites of
the whole library keep a topic name at the top level and are listed in
CROSS_CUTTING. Every folder of tests below tests/ is a package (an
`__init__.py`) and tests/ is not: pytest then puts tests/ on sys.path for
every test file, so the helpers (trainer_testlib, gradcheck, the fakes)
import and two test_<module>.py of different folders do not clash.
"""
import os

import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Suites of the whole library (a user's view, the repository, or, for the
# last two, one issue's feature across modules): at the top level.
CROSS_CUTTING = {
    "test_examples.py": "examples/ run from an empty directory",
    "test_gin_configs.py": "every shipped gin file parses and binds",
    "test_layering.py": "the engine imports no task",
    "test_layout.py": "this file",
    "test_packaging.py": "what ships and what CI runs",
    "test_readme.py": "README.md's snippets run and its links hold",
    "test_reliability.py": "a run cannot be silently corrupted (issue 15)",
    "test_tfds_pipelines.py": "the shipped CIFAR / ImageNet runs, end to end",
    "test_user_errors.py": "every user mistake is one line (and checks.py)",
    "test_heldout.py": "the held-out split (issue 16): data.splits, trainer",
    "test_teaching.py": "what makes the DLN teach (issue 12): teacher, "
                        "dln_warm_start, loss_surface, the guard of rounds.l2t",
}
# Modules being created elsewhere (path in l2t_tf/ without .py): their test
# files are accepted while the module does not exist yet.
PENDING = {}


def package_modules(package):
  """{folder: names}: the modules and subpackages of each package folder."""
  modules = {}
  for folder, dirs, files in os.walk(package):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    if "__init__.py" not in files:
      continue
    rel = os.path.relpath(folder, package).replace(os.sep, "/")
    rel = "" if rel == "." else rel
    names = modules.setdefault(rel, set())
    names.update(f[:-3] for f in files
                 if f.endswith(".py") and f != "__init__.py")
    if rel:  # The subpackage is a module of its parent folder.
      parent, _, name = rel.rpartition("/")
      modules.setdefault(parent, set()).add(name)
  return modules


def layout_problems(tests, package, cross_cutting=CROSS_CUTTING,
                    pending=PENDING):
  """One line per test file or folder that breaks the layout."""
  modules = package_modules(package)
  for path in pending:
    folder, _, name = path.rpartition("/")
    if name in modules.get(folder, ()):
      yield (f"l2t_tf/{path}.py exists: drop it from PENDING in "
             "tests/test_layout.py")
    modules.setdefault(folder, set()).add(name)
  if os.path.exists(os.path.join(tests, "__init__.py")):
    yield ("tests/__init__.py: pytest would put the repository, not tests/, "
           "on sys.path, and the helpers would not import")
  for name in sorted(cross_cutting):
    if not os.path.exists(os.path.join(tests, name)):
      yield f"tests/{name} is listed in CROSS_CUTTING but is gone"
  for folder, dirs, files in os.walk(tests):
    dirs[:] = sorted(d for d in dirs
                     if d != "__pycache__" and not d.startswith("."))
    rel = os.path.relpath(folder, tests).replace(os.sep, "/")
    rel = "" if rel == "." else rel
    test_files = sorted(f for f in files if f.endswith(".py") and (
        f.startswith("test_") or f.endswith("_test.py")))
    where = f"tests/{rel}/" if rel else "tests/"
    if rel and test_files and "__init__.py" not in files:
      yield (f"{where} has no __init__.py: its test files would clash with "
             "same-named ones elsewhere")
    names = modules.get(rel, set())
    for name in test_files:
      if not rel and name in cross_cutting:
        continue
      stem = name[len("test_"):-len(".py")] if name.startswith("test_") else ""
      if not any(stem == m or stem.startswith(m + "_") for m in names):
        yield (f"{where}{name}: no l2t_tf/{rel + '/' if rel else ''}"
               f"{stem or name[:-3]}.py; name a test file test_<module>.py "
               "in the folder that mirrors its module's, or list a "
               "whole-library suite in CROSS_CUTTING")


class LayoutTest(tf.test.TestCase):

  def test_every_test_file_is_named_after_a_module_or_listed(self):
    self.assertEqual(list(layout_problems(os.path.join(REPO, "tests"),
                                          os.path.join(REPO, "l2t_tf"))), [])

  def test_the_check_sees_misnamed_and_misplaced_files(self):
    root = self.get_temp_dir()
    package, tests = os.path.join(root, "pkg"), os.path.join(root, "tests")
    files = {
        "pkg/__init__.py": "", "pkg/engine.py": "", "pkg/sub/__init__.py": "",
        "pkg/sub/leaf.py": "", "pkg/other/__init__.py": "",
        "pkg/other/leaf.py": "",
        # Named after a module, a subpackage, a pending module, an aspect.
        "tests/test_engine.py": "", "tests/test_engine_slow.py": "",
        "tests/test_sub.py": "", "tests/test_later.py": "",
        "tests/test_suite.py": "", "tests/sub/__init__.py": "",
        "tests/sub/test_leaf.py": "", "tests/sub/helper.py": "",
        # Wrong: a topic name, a module of another folder, a folder that
        # mirrors no package, a folder without __init__.py, *_test.py.
        "tests/test_topic.py": "", "tests/test_leaf.py": "",
        "tests/sub/test_engine.py": "", "tests/nowhere/__init__.py": "",
        "tests/nowhere/test_leaf.py": "", "tests/other/test_leaf.py": "",
        "tests/engine_test.py": ""}
    for path, text in files.items():
      os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
      with open(os.path.join(root, path), "w", encoding="utf-8") as f:
        f.write(text)
    problems = list(layout_problems(
        tests, package, cross_cutting={"test_suite.py": "", "test_gone.py": ""},
        pending={"later": "", "sub/leaf": ""}))
    flagged = sorted(p.split(":")[0].split(" ")[0] for p in problems)
    self.assertEqual(flagged, sorted([
        "l2t_tf/sub/leaf.py", "tests/test_gone.py", "tests/other/",
        "tests/engine_test.py", "tests/test_leaf.py", "tests/test_topic.py",
        "tests/nowhere/test_leaf.py", "tests/sub/test_engine.py"]), problems)
    with open(os.path.join(tests, "__init__.py"), "w", encoding="utf-8"):
      pass
    problems = layout_problems(tests, package, cross_cutting={}, pending={})
    self.assertIn("tests/__init__.py", [p.split(":")[0] for p in problems])


if __name__ == "__main__":
  tf.test.main()
