r"""Table 1 with every method tuned by one protocol (issue 16).

  python tools/tune_methods.py                    # digits, all eight methods
  python tools/tune_methods.py --methods=ce,arlf --jobs=1
  python tools/tune_methods.py --seeds=2 --selection_seeds=1 \
      --gin_bindings="Trainer.max_rounds=5" --runs_dir=/tmp/tuned  # smoke

The protocol, the same for every method:
1. Every run holds out the same 20 % of the training set
   (`Trainer.heldout_ratio = 0.2`, `data.splits.holdout`): neither student
   nor teacher sees it. Settings are compared on its accuracy only; the test
   set is never used to choose.
2. Sweep the student learning rate over {0.03, 0.1, 0.3} with the method's
   other knobs at their defaults, on the selection seeds (0, 1). If the best
   rate is on an edge of the grid, widen it once by the next rate on that
   side ({0.01} or {1.0}): a loss whose gradient is ten times smaller than
   CE's (`tools/gradient_scale.py`) is not to be judged at CE's rates.
3. A method with a teacher (L2T-DLF, ALA, L2T-DLN) then sweeps its teacher's
   learning rate over {default / 3, default * 3} at the chosen student rate
   (coordinate-wise: 3 + 2 settings, not 3 x 3).
4. The setting with the highest mean held-out accuracy over the selection
   seeds wins (a run that diverges scores 0; ties go to the earlier
   setting, the default first). It is then run on all `--seeds` seeds; the
   untuned default (student rate 0.1, teacher at its default) too with
   `--untuned_seeds` = `--seeds` (by default it keeps its selection seeds).

Writes <output>.md and <output>.json: the tuned table (chosen setting, test
mean ± std and min over seeds, held-out mean, CE twin where the run has one,
time), the untuned table on the same held-out split (the paper's "same
settings" reading), and every setting's held-out score. Runs go to
<runs_dir>/<method>/<setting>/seed_<s> (one `python -m l2t_tf.main` each,
`--jobs` at a time); finished runs are reused, so the command resumes.
"""
import argparse
import concurrent.futures
import contextlib
import heapq
import itertools
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time

import numpy as np

from l2t_tf import strict_json
from l2t_tf.experiments import compare_methods
from l2t_tf.experiments import make_table

STUDENT_LR = "Trainer.student_learning_rate"
STUDENT_RATES = (0.1, 0.03, 0.3)  # The default first: it wins ties.
WIDER_RATES = {0.03: 0.01, 0.3: 1.0}  # The next rate beyond each edge.
DEFAULT_STUDENT_RATE = 0.1
# The teacher's learning-rate binding and default of each taught method.
TEACHER_LR = {"l2t_dlf": ("DLFTeacherUpdater.learning_rate", 1e-3),
              "ala": ("ALAControllerUpdater.learning_rate", 1e-3),
              "l2t_dln": ("TeacherUpdater.learning_rate", 1e-3)}
TEACHER_FACTORS = (1 / 3, 3.0)
HELDOUT = "Trainer.heldout_ratio = 0.2"
# Run order (`Runner`): the methods with the longest runs first.
SLOWEST_FIRST = ("l2t_dln", "l2t_dlf", "ala", "arlf", "slf", "lsoftmax",
                 "smooth01", "ce")
SELECTION_METRIC = "heldout_accuracy"


def setting_name(setting):
  """A directory name for a {binding: value} setting, e.g. 'lr0.03'."""
  parts = [f"lr{setting[STUDENT_LR]:g}"]
  parts += [f"tlr{v:.3g}" for k, v in sorted(setting.items())
            if k != STUDENT_LR]
  return "_".join(parts)


def student_grid(method):
  """Step 2's settings: the student rates, the teacher at its default."""
  teacher = TEACHER_LR.get(method)
  return [dict({STUDENT_LR: lr}, **({teacher[0]: teacher[1]} if teacher
                                    else {})) for lr in STUDENT_RATES]


def widened_grid(method, best):
  """The next student rate beyond `best` if it is an edge, else []."""
  wider = WIDER_RATES.get(best[STUDENT_LR])
  return [] if wider is None else [dict(best, **{STUDENT_LR: wider})]


def teacher_grid(method, best):
  """Step 3's settings around `best` (empty for a method without teacher)."""
  if method not in TEACHER_LR:
    return []
  name, default = TEACHER_LR[method]
  return [dict(best, **{name: default * f}) for f in TEACHER_FACTORS]


def default_setting(method):
  return student_grid(method)[0]


def score(runs):
  """Mean selection metric over seeds; a failed run (None) counts as 0."""
  return float(np.mean([0.0 if r is None or r.get(SELECTION_METRIC) is None
                        else r[SELECTION_METRIC] for r in runs]))


def choose(scored):
  """The setting with the best score; the earliest wins ties.

  Args:
    scored: [(setting, score)] in sweep order.
  """
  best = max(s for _, s in scored)
  return next(setting for setting, s in scored if s == best)


class _Slots:
  """`jobs` slots, handed out by lowest priority value, then first come."""

  def __init__(self, jobs):
    self._free, self._waiting = jobs, []
    self._condition, self._tickets = threading.Condition(), itertools.count()

  @contextlib.contextmanager
  def hold(self, priority):
    with self._condition:
      ticket = (priority, next(self._tickets))
      heapq.heappush(self._waiting, ticket)
      while not (self._free and self._waiting[0] == ticket):
        self._condition.wait()
      heapq.heappop(self._waiting)
      self._free -= 1
      self._condition.notify_all()  # The next ticket may take a free slot.
    try:
      yield
    finally:
      with self._condition:
        self._free += 1
        self._condition.notify_all()


class Runner:
  """Runs (method, setting, seed) once, `jobs` at a time; reuses results.

  Waiting runs start in the order of `priority` (method keys, first
  first): the slowest methods' chains of sweeps then finish soonest.
  """

  def __init__(self, runs_dir, jobs, extra_bindings=(), priority=()):
    self.runs_dir, self.extra = runs_dir, list(extra_bindings)
    self._slots = _Slots(jobs)
    self._priority = {key: i for i, key in enumerate(priority)}
    self._lock = threading.Lock()

  def model_dir(self, method, setting, seed):
    return os.path.join(self.runs_dir, method, setting_name(setting),
                        f"seed_{seed}")

  def run(self, method, gin_file, setting, seed):
    """The run's results dict, or None if it failed (e.g. diverged)."""
    model_dir = self.model_dir(method, setting, seed)
    results_path = os.path.join(model_dir, "results.json")
    failed_path = os.path.join(model_dir, "failed.txt")
    for path, value in ((results_path, "json"), (failed_path, None)):
      if os.path.exists(path):
        if value is None:
          return None
        with open(path) as f:
          return json.load(f)
    bindings = [HELDOUT] + [f"{k} = {v!r}" for k, v in setting.items()] + [
        f"Trainer.seed = {seed}", f"train_eval.model_dir = '{model_dir}'",
        "Trainer.progress = False"] + self.extra
    command = [sys.executable, "-m", "l2t_tf.main", f"--gin_file={gin_file}"]
    command += [f"--gin_bindings={b}" for b in bindings]
    os.makedirs(model_dir, exist_ok=True)
    with self._slots.hold(self._priority.get(method, len(self._priority))):
      self._log(f"start {method} {setting_name(setting)} seed {seed}")
      with open(os.path.join(model_dir, "log.txt"), "w") as log:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log,
                              text=True, check=False)
    if done.returncode:
      with open(os.path.join(model_dir, "log.txt")) as f:
        last = ([line for line in f.read().splitlines() if line.strip()]
                or ["(no output)"])[-1]
      with open(failed_path, "w") as f:
        f.write(f"exit {done.returncode}: {last}\n")
      self._log(f"FAILED {method} {setting_name(setting)} seed {seed}: "
                f"{last[:200]}")
      return None
    results = json.loads(done.stdout.strip().splitlines()[-1])
    with open(results_path, "w") as f:
      strict_json.dump(results, f, indent=1)
    self._log(f"done {method} {setting_name(setting)} seed {seed}: held-out "
              f"{results.get(SELECTION_METRIC, float('nan')):.4f} test "
              f"{results['test_accuracy']:.4f} "
              f"({results['train_time_s']:.0f} s)")
    return results

  def run_all(self, method, gin_file, setting, seeds):
    with concurrent.futures.ThreadPoolExecutor(len(seeds)) as pool:
      return list(pool.map(
          lambda s: self.run(method, gin_file, setting, s), seeds))

  def _log(self, text):
    with self._lock:
      print(time.strftime("%H:%M:%S"), text, flush=True)


def tune(runner, method, gin_file, selection_seeds, seeds,
         untuned_seeds=None):
  """Steps 2-4 for one method; a dict of its sweep, choice and runs."""
  untuned_seeds = selection_seeds if untuned_seeds is None else untuned_seeds
  sweep = []

  def evaluate(settings):
    with concurrent.futures.ThreadPoolExecutor(len(settings)) as pool:
      scores = list(pool.map(lambda s: score(runner.run_all(
          method, gin_file, s, selection_seeds)), settings))
    sweep.extend(zip(settings, scores))

  evaluate(student_grid(method))
  best = choose(sweep)
  if widened_grid(method, best):
    evaluate(widened_grid(method, best))
    best = choose(sweep)
  if teacher_grid(method, best):
    evaluate(teacher_grid(method, best))
    best = choose(sweep)
  default = default_setting(method)
  if default == best:  # One setting: run it once (two runs would collide).
    tuned = untuned = runner.run_all(method, gin_file, best, seeds)
  else:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      tuned, untuned = pool.map(
          lambda final: runner.run_all(method, gin_file, *final),
          [(best, seeds), (default, untuned_seeds)])
  runs = {"tuned": tuned, "untuned": untuned}
  return {"sweep": sweep, "chosen": best, "default": default, "runs": runs}


def _cell(runs, setting_runs_dir):
  """make_table's summary of the finished runs, plus selection fields."""
  finished = [r for r in runs if r is not None]
  if not finished:
    return {"n": 0, "failed": len(runs), "dir": setting_runs_dir}
  cell = make_table.summarise(finished)
  cell.update(failed=len(runs) - len(finished), dir=setting_runs_dir,
              heldout_mean=score(runs))
  return cell


def _pct(value):
  return "" if value is None else f"{100 * value:.2f}"


def _describe(setting):
  """'student lr 0.1, teacher lr 0.001'."""
  return ", ".join(f"{'student' if k == STUDENT_LR else 'teacher'} lr {v:.3g}"
                   for k, v in setting.items())


def markdown(title, labels, results):
  """The tuned table, the untuned one and the sweep, as Markdown."""
  header = ("| | chosen setting | test acc. mean ± std (%) | min (%) | "
            "seeds | held-out (%) | CE twin (%) | s / run |\n"
            "|---|---|---|---|---|---|---|---|")
  lines = [f"## {title}", "", "### Tuned (each method's chosen setting)", "",
           header]
  untuned = ["", "### Untuned (student lr 0.1, teacher at its default; the "
             "same held-out split)", "", header.replace("chosen setting",
                                                        "setting")]
  sweep = ["", "### The sweep (mean held-out accuracy over the selection "
           "seeds)", "", "| | setting | held-out (%) |", "|---|---|---|"]
  for key, result in results.items():
    for kind, table in (("tuned", lines), ("untuned", untuned)):
      cell, setting = result[kind], result["chosen" if kind == "tuned"
                                             else "default"]
      if not cell["n"]:
        table.append(f"| {labels[key]} | {_describe(setting)} | all "
                     f"{cell['failed']} runs failed | | | | | |")
        continue
      twin = (f"{_pct(cell['comparison_mean'])} ± "
              f"{_pct(cell['comparison_std'])}"
              if "comparison_mean" in cell else "")
      failed = f" ({cell['failed']} failed)" if cell["failed"] else ""
      table.append(
          f"| {labels[key]} | {_describe(setting)} | {_pct(cell['mean'])} ± "
          f"{_pct(cell['std'])}{failed} | {_pct(cell['min'])} | {cell['n']} "
          f"| {_pct(cell['heldout_mean'])} | {twin} | "
          f"{cell.get('median_train_time_s') or 0:.0f} |")
    for setting, value in result["sweep"]:
      mark = " **(chosen)**" if setting == result["chosen"] else ""
      sweep.append(f"| {labels[key]} | {_describe(setting)}{mark} | "
                   f"{_pct(value)} |")
  return "\n".join(lines + untuned + sweep) + "\n"


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  keys = [key for key, _, _ in compare_methods.DIGITS_METHODS]
  parser.add_argument("--methods", default=",".join(keys),
                      help="comma-separated keys: " + ",".join(keys))
  parser.add_argument("--selection_seeds", type=int, default=2)
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--untuned_seeds", type=int, default=None,
                      help="seeds of the untuned default's row (default: "
                      "the selection seeds; it has all --seeds if chosen)")
  parser.add_argument("--jobs", type=int, default=2,
                      help="runs at a time (one per core is about right)")
  parser.add_argument("--runs_dir", default="runs/tuned")
  parser.add_argument("--output", default="docs/digits_table1_tuned")
  parser.add_argument("--title", default="Digits, Table 1 with every method "
                      "tuned by one protocol")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="extra bindings for every run")
  args = parser.parse_args(argv)
  methods = args.methods.split(",")
  unknown = sorted(set(methods) - set(keys))
  if unknown:
    parser.error(f"--methods: unknown {unknown}; choose from {keys}")
  if not 1 <= args.selection_seeds <= args.seeds:
    parser.error("need 1 <= --selection_seeds <= --seeds")
  args.methods = methods
  return args


def main(argv=None):
  args = parse_args(argv)
  start = time.time()
  table = {key: (label, gin) for key, label, gin in
           compare_methods.DIGITS_METHODS if key in args.methods}
  runner = Runner(args.runs_dir, args.jobs, args.gin_bindings,
                  priority=SLOWEST_FIRST)
  selection, seeds = range(args.selection_seeds), range(args.seeds)
  untuned = range(args.untuned_seeds or args.selection_seeds)
  with concurrent.futures.ThreadPoolExecutor(len(table)) as pool:
    tuned = dict(zip(table, pool.map(
        lambda key: tune(runner, key, table[key][1], selection, seeds,
                         untuned),
        table)))
  results = {}
  for key, result in tuned.items():
    results[key] = dict(
        sweep=result["sweep"], chosen=result["chosen"],
        default=result["default"],
        **{kind: _cell(runs, os.path.dirname(runner.model_dir(
            key, result["chosen" if kind == "tuned" else "default"], 0)))
           for kind, runs in result["runs"].items()})
  labels = {key: label for key, (label, _) in table.items()}
  command = shlex.join(["python", "tools/tune_methods.py"] + list(
      sys.argv[1:] if argv is None else argv))
  text = markdown(args.title, labels, results) + (
      f"\nMade by `{command}` in {(time.time() - start) / 60:.1f} minutes "
      f"on {os.cpu_count()} CPUs ({platform.node()}, "
      f"{time.strftime('%Y-%m-%d')}), {args.jobs} runs at a time; runs "
      f"already finished under {args.runs_dir}/ are reused, not rerun.\n")
  os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
  with open(args.output + ".md", "w") as f:
    f.write(text)
  with open(args.output + ".json", "w") as f:
    strict_json.dump({"title": args.title, "command": command,
                      "protocol": {"heldout": HELDOUT,
                                   "student_rates": STUDENT_RATES,
                                   "teacher_factors": TEACHER_FACTORS,
                                   "selection_seeds": args.selection_seeds,
                                   "seeds": args.seeds},
                      "methods": {k: dict(label=labels[k], **v)
                                  for k, v in results.items()}}, f, indent=1)
  print(text)


if __name__ == "__main__":
  main()
