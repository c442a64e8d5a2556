"""The test (and held-out) metrics of a run's students.

`Evaluator.evaluate()` gives the task's metrics of the student and, with
the prefix `comparison_`, of its comparison student; with a held-out split
(issue 16) also their metrics on it, `test_` read as `heldout_`.
"""


class Evaluator:
  """Evaluates `students` ({"student": model, "comparison student": model})."""

  PREFIXES = {"student": "", "comparison student": "comparison_"}

  def __init__(self, task, students, test_data, heldout_data=None):
    self.task, self.students = task, students
    self.test_data, self.heldout_data = test_data, heldout_data

  @property
  def primary_metric(self):
    return self.task.primary_metric

  def evaluate(self):
    """{metric: value} of every student (see the module)."""
    results = {}
    for name, student in self.students.items():
      prefix = self.PREFIXES[name]
      for k, v in self.task.evaluate(student, self.test_data).items():
        results[prefix + k] = v
      if self.heldout_data is not None:
        for k, v in self.task.evaluate(student, self.heldout_data).items():
          results[prefix + k.replace("test_", "heldout_", 1)] = v
    return results
