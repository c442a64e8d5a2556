r"""Does L2T-DLN teach beyond digits? The cross-data-set benchmark (issue 23).

  python tools/generalization.py --budget=short          # 3 teacher epochs
  python tools/generalization.py --budget=default        # 10 (overnight)
  python tools/generalization.py --budget=short --seeds=2 \
      --sets=mnist1d/conv1d --rows=paper,all --jobs=2

Every cell (data set / student, row, seed) is one `l2t_tf.teach` run in a
subprocess (resumable: a finished cell is read, not rerun) with the row's
recipe, a 20 % held-out selection split (`Trainer.heldout_ratio`) and its
own CE twin on the same batches. The rows are the teaching ablation of
`compare_methods.py --suite=teaching` (the paper's configuration, each of
our extensions, all of them = the default recipe). The data sets and
students: `l2t_tf.data.benchmark_sets`, `l2t_tf.students.small`.

Writes <output>.md and <output>.json: per cell the taught student's and
its twin's test accuracy (mean ± std over seeds, every seed in the JSON),
the gap taught - twin in points (mean, and the worst seed), the same gap on
the held-out split (where settings are chosen; never the test set), and
whether the row meets issue 23's bar: mean gap >= -0.5 and no seed below
-2 points.
"""
import argparse
import concurrent.futures
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
import compare_methods  # noqa: E402  pylint: disable=g-import-not-at-top

SETS = ("digits/cnn", "mnist1d/conv1d", "mnist1d/mlp", "breast_cancer/mlp",
        "segment/mlp")
ROWS = ("paper", "warm", "guard", "descent_skip", "all")
BUDGETS = {"short": 3, "default": 10}
HELDOUT_RATIO = 0.2
BAR_MEAN, BAR_SEED = -0.5, -2.0  # Points: issue 23's bar.


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--budget", default="short", choices=sorted(BUDGETS))
  parser.add_argument("--sets", default=",".join(SETS))
  parser.add_argument("--rows", default=",".join(ROWS))
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--first_seed", type=int, default=0)
  parser.add_argument("--jobs", type=int, default=1,
                      help="cells run at once (each uses the cores it gets)")
  parser.add_argument("--runs_dir", default="runs/generalization")
  parser.add_argument("--output", default=None,
                      help="default docs/generalization_<budget>")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="extra bindings for every cell")
  parser.add_argument("--table_only", action="store_true")
  parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
  parser.add_argument("--model_dir", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  args.output = args.output or f"docs/generalization_{args.budget}"
  return args


def row_bindings(row):
  """The gin bindings of a teaching row (compare_methods.TEACHING_ROWS)."""
  for key, _, _, bindings in compare_methods.TEACHING_ROWS:
    if key == row:
      return list(bindings)
  raise SystemExit(f"unknown row {row!r}; choose from {ROWS}")


def _student(set_and_student, input_shape, num_classes):
  """A function of no argument building the cell's student."""
  from l2t_tf.students import digits_cnn  # pylint: disable=g-import-not-at-top
  from l2t_tf.students import small  # pylint: disable=g-import-not-at-top
  kind = set_and_student.split("/")[1]
  factory = {"cnn": digits_cnn.digits_cnn, "conv1d": small.conv1d,
             "mlp": small.mlp}[kind]
  return lambda: factory(input_shape=input_shape, num_classes=num_classes)


def run_one(cell, model_dir, budget, extra_bindings):
  """Runs one cell in this process (the subprocess's job)."""
  import l2t_tf  # pylint: disable=g-import-not-at-top
  from l2t_tf.data import benchmark_sets  # pylint: disable=g-import-not-at-top
  set_and_student, row, seed = cell.split(":")
  x, y, x_test, y_test = benchmark_sets.load(set_and_student.split("/")[0])
  num_classes = int(max(y.max(), y_test.max())) + 1
  result = l2t_tf.teach(
      _student(set_and_student, x.shape[1:], num_classes), (x, y),
      test_data=(x_test, y_test), model_dir=model_dir,
      gin_bindings=row_bindings(row) + list(extra_bindings),
      teacher_epochs=BUDGETS[budget], seed=int(seed),
      heldout_ratio=HELDOUT_RATIO, progress=False)
  print(json.dumps({k: v for k, v in result.results.items()
                    if k != "history"}))


def _model_dir(args, set_and_student, row, seed):
  return os.path.join(args.runs_dir, args.budget,
                      set_and_student.replace("/", "_"), row, f"seed_{seed}")


def _finished(model_dir, budget):
  path = os.path.join(model_dir, "results.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    results = json.load(f)
  done = results.get("teacher_epochs_done") == BUDGETS[budget]
  return results if done else None


def _run_cell(args, cell, model_dir):
  command = [sys.executable, os.path.abspath(__file__), f"--one={cell}",
             f"--budget={args.budget}", f"--runs_dir={args.runs_dir}"]
  command += [f"--gin_bindings={b}" for b in args.gin_bindings]
  command += [f"--model_dir={model_dir}"]
  start = time.time()
  done = subprocess.run(command, capture_output=True, text=True, check=False)
  status = "ok" if done.returncode == 0 else f"FAILED ({done.returncode})"
  print(f"{cell}: {status} in {time.time() - start:.0f} s", flush=True)
  if done.returncode:
    print(done.stderr[-2000:], flush=True)


def _cells(args):
  return [(s, r, seed) for s in args.sets.split(",")
          for r in args.rows.split(",")
          for seed in range(args.first_seed, args.first_seed + args.seeds)]


def _summary(values):
  values = [v for v in values if v is not None]
  if not values:
    return None
  return {"mean": float(np.mean(values)),
          "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
          "min": float(np.min(values)), "n": len(values)}


def table(args):
  """{cell key: per-seed results and summaries} of the finished cells."""
  cells = {}
  for set_and_student, row, seed in _cells(args):
    results = _finished(_model_dir(args, set_and_student, row, seed),
                        args.budget)
    if results is None:
      continue
    entry = cells.setdefault(f"{set_and_student}|{row}", {"seeds": {}})
    entry["seeds"][seed] = {
        k: results.get(k) for k in (
            "test_accuracy", "comparison_test_accuracy", "heldout_accuracy",
            "comparison_heldout_accuracy", "fraction_updates_accepted",
            "dln_properness", "train_time_s", "rounds_done")}
  for entry in cells.values():
    seeds = list(entry["seeds"].values())

    def pct(key, seeds=seeds):
      return [100 * s[key] for s in seeds if s[key] is not None]
    gap = [100 * (s["test_accuracy"] - s["comparison_test_accuracy"])
           for s in seeds]
    held = [100 * (s["heldout_accuracy"] - s["comparison_heldout_accuracy"])
            for s in seeds if s["heldout_accuracy"] is not None]
    entry.update(taught=_summary(pct("test_accuracy")),
                 twin=_summary(pct("comparison_test_accuracy")),
                 gap=_summary(gap), heldout_gap=_summary(held),
                 meets_bar=bool(np.mean(gap) >= BAR_MEAN and
                                np.min(gap) >= BAR_SEED))
  return cells


def _fmt(summary):
  return "–" if summary is None else (
      f"{summary['mean']:.2f} ± {summary['std']:.2f}")


def write_table(args, cells, minutes):
  labels = {k: label for k, label, _, _ in compare_methods.TEACHING_ROWS}
  lines = [f"## L2T-DLN beyond digits, budget '{args.budget}' "
           f"({BUDGETS[args.budget]} teacher epochs)", "",
           "| data set / student | row | taught test acc. (%) | CE twin (%) "
           "| gap (points) | worst seed gap | held-out gap | seeds | bar |",
           "|---|---|---|---|---|---|---|---|---|"]
  for key, entry in cells.items():
    set_and_student, row = key.split("|")
    lines.append(
        f"| {set_and_student} | {labels.get(row, row)} | "
        f"{_fmt(entry['taught'])} | {_fmt(entry['twin'])} | "
        f"{entry['gap']['mean']:+.2f} | {entry['gap']['min']:+.2f} | "
        f"{_fmt(entry['heldout_gap'])} | {entry['gap']['n']} | "
        f"{'met' if entry['meets_bar'] else 'NOT met'} |")
  command = ["python", "tools/generalization.py"] + sys.argv[1:]
  lines += ["", f"Made by `{shlex.join(command)}` ({minutes:.1f} minutes of "
            f"runs on {os.cpu_count()} CPUs, {platform.node()}, "
            f"{time.strftime('%Y-%m-%d')}; finished cells under "
            f"{args.runs_dir}/ are reused). The bar (issue 23): mean gap >= "
            f"{BAR_MEAN} and every seed >= {BAR_SEED} points. Held-out gap: "
            f"the same difference on the 20 % selection split.", ""]
  with open(args.output + ".md", "w") as f:
    f.write("\n".join(lines))
  with open(args.output + ".json", "w") as f:
    json.dump({"budget": args.budget, "cells": cells,
               "command": shlex.join(command)}, f, indent=1)


def main(argv=None):
  args = parse_args(argv)
  if args.one:
    run_one(args.one, args.model_dir, args.budget, args.gin_bindings)
    return
  start = time.time()
  todo = [(f"{s}:{r}:{seed}", _model_dir(args, s, r, seed))
          for s, r, seed in _cells(args)
          if _finished(_model_dir(args, s, r, seed), args.budget) is None]
  if not args.table_only:
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
      list(pool.map(lambda c: _run_cell(args, *c), todo))
  write_table(args, table(args), (time.time() - start) / 60)
  print(f"wrote {args.output}.md and .json", flush=True)


if __name__ == "__main__":
  main()
