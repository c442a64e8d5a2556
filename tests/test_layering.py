"""The package's layering (issue 24): the engine imports no task.

The engine is the method itself (the DLN, the teacher, the hypergradient,
the DLN updaters, the MLP, the warm start, the loss surface, the export);
tasks (`l2t_tf.tasks`), their data and students sit above it. A task-specific
DLN (e.g. `tasks.yolo_dln.YoloDLN`) lives with its task. Read from the
source with `ast`, so the test fails on an import hidden inside a function.
"""
import ast
import os

import tensorflow as tf

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "l2t_tf")
ENGINE = ("dln", "dln_updaters", "dln_warm_start", "export", "hypergradient",
          "loss_surface", "mlp", "teacher")
ABOVE_THE_ENGINE = ("l2t_tf.tasks", "l2t_tf.data", "l2t_tf.students")


def imported_modules(path):
  """Every module name an `import` or `from ... import` in `path` names."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read())
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      names += [node.module] + [f"{node.module}.{alias.name}"
                                for alias in node.names]
  return names


class LayeringTest(tf.test.TestCase):

  def test_the_engine_imports_no_task(self):
    for module in ENGINE:
      for name in imported_modules(os.path.join(PACKAGE, module + ".py")):
        with self.subTest(module=module, imports=name):
          self.assertFalse(name.startswith(ABOVE_THE_ENGINE),
                           f"l2t_tf/{module}.py imports {name}")

  def test_the_check_sees_a_task_import(self):
    path = os.path.join(self.get_temp_dir(), "engine_like.py")
    with open(path, "w", encoding="utf-8") as f:
      f.write("def f():\n  from l2t_tf.tasks import yolo_loss\n")
    self.assertIn("l2t_tf.tasks.yolo_loss", imported_modules(path))


if __name__ == "__main__":
  tf.test.main()
