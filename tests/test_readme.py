"""README.md as a user's manual: its snippets run verbatim, its links hold."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path):
  with open(os.path.join(REPO, path)) as f:
    return f.read()


class ReadmeTest(unittest.TestCase):

  def test_python_snippets_run_verbatim_from_an_empty_directory(self):
    """The own-model snippet, then the learned-loss one that continues it."""
    blocks = re.findall(r"```python\n(.*?)```", _read("README.md"), re.S)
    self.assertEqual(len(blocks), 2)
    with tempfile.TemporaryDirectory() as cwd:
      done = subprocess.run([sys.executable, "-c", "\n".join(blocks)],
                            cwd=cwd, capture_output=True, text=True,
                            timeout=900)
      self.assertEqual(done.returncode, 0, done.stderr[-3000:])
      taught, twin = map(float, done.stdout.splitlines()[0].split())
      self.assertGreater(taught, 0.5)  # 10 classes: chance is 0.1.
      self.assertGreater(twin, 0.5)
      accuracy = float(done.stdout.splitlines()[1].strip("[]").split(",")[1])
      self.assertGreater(accuracy, 0.5)
      self.assertTrue(os.path.exists(os.path.join(
          cwd, "runs", "my_mlp", "dln_export", "dln.keras")))

  def test_readme_is_a_manual_and_its_links_resolve(self):
    readme = _read("README.md")
    self.assertLessEqual(len(readme.splitlines()), 250)
    for document in ["README.md"] + [
        os.path.join("docs", name) for name in os.listdir(
            os.path.join(REPO, "docs")) if name.endswith(".md")]:
      folder = os.path.dirname(os.path.join(REPO, document))
      for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)",
                               _read(document)):
        if "://" in target:
          continue
        with self.subTest(document=document, target=target):
          self.assertTrue(os.path.exists(os.path.join(folder, target)))

  def test_adoption_basics_exist(self):
    import l2t_tf  # pylint: disable=g-import-not-at-top
    self.assertRegex(l2t_tf.__version__, r"^\d+\.\d+\.\d+")
    self.assertIn("Apache License", _read("LICENSE"))
    self.assertIn("## [Unreleased]", _read("CHANGELOG.md"))


if __name__ == "__main__":
  unittest.main()
