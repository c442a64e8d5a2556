r"""Does L2T-DLN teach beyond digits? The cross-data-set benchmark (issue 23).

  python tools/generalization.py --budget=short          # 3 teacher epochs
  python tools/generalization.py --budget=default        # 10 (overnight)
  python tools/generalization.py --budget=short --seeds=2 \
      --sets=mnist1d/conv1d --rows=paper,all --jobs=2
  python tools/generalization.py --condition=noise40 --trusted=100 \
      --rows=all,smooth01,arlf            # where a learned loss should win

Every cell (data set / student, row, seed) is one `l2t_tf.teach` run in a
subprocess (resumable: a finished cell is read, not rerun) with the row's
recipe, a 20 % held-out selection split (`Trainer.heldout_ratio`) and its
own CE twin on the same batches. The rows are the teaching ablation of
`compare_methods.py --suite=teaching` (the paper's configuration, each of
our extensions, all of them = the default recipe). The data sets and
students: `l2t_tf.data.benchmark_sets`, `l2t_tf.students.small`.

Writes <output>.md and <output>.json: per cell the taught student's and
its twin's test accuracy (mean ± std over seeds, every seed in the JSON),
the gap taught - twin in points (mean, and the worst seed), the gap over
its standard error across seeds (mean / (std / sqrt(n)) of the paired
differences; > 2: beats CE by more than two standard errors), the same gap
on the held-out split (where settings are chosen; never the test set), and
whether the row meets issue 23's bar: mean gap >= -0.5 and no seed below
-2 points.

Where a learned loss should win (issue 23, item 4): `--condition` corrupts
the training split (`benchmark_sets.corrupt`, drawn with the cell's seed,
so every row of a seed sees the same data; the test split stays clean):
`noise20` / `noise40` flip 20 / 40 % of its labels (symmetric), and
`imbalance10` makes it long-tailed (ratio 10). `--trusted=K` first sets
aside K clean, class-balanced training examples (true labels; K/C per
class) as the teacher's fixed validation set (`teach(validation_data=)`);
the students train on the rest, and an epoch has as many rounds as the
per-epoch random split of the same data would give
(`Trainer.rounds_per_epoch`, unless bound), so the student's budget is
that of `--trusted=0` (the validation part then as corrupted as the
training part). The rows `smooth01` and `arlf` are fixed-loss runs (smooth
0-1 loss, adaptive robust loss; `build.round = @FixedLossRound`) compared
with the CE twin of the `all` row of the same set and seed (the same
initial weights and batches), when that cell has run. A condition other
than `clean`, or K > 0, gets its own run directories
(<runs_dir>/<budget>/<condition>[_trusted<K>]/...) and output
(docs/generalization_<budget>_<condition>[_trusted<K>]); its default rows
are `all,smooth01,arlf`.
"""
import argparse
import concurrent.futures
import dataclasses
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

from l2t_tf.experiments import compare_methods

SETS = ("digits/cnn", "mnist1d/conv1d", "mnist1d/mlp", "breast_cancer/mlp",
        "segment/mlp")
ROWS = ("paper", "warm", "guard", "descent_skip", "all")
# Fixed-loss rows: key -> (label, the bound SupervisedTask.fixed_loss).
FIXED_LOSS_ROWS = {
    "smooth01": ("Smooth 0-1 (fixed loss)", "@smooth_01_loss"),
    "arlf": ("Adaptive robust loss (fixed loss)", "@adaptive_robust_loss()"),
}
ROBUST_ROWS = ("all", "smooth01", "arlf")  # Default rows off `clean`.
TWIN_ROW = "all"  # Whose CE twin a fixed-loss row is compared with.
CONDITIONS = ("clean", "noise20", "noise40", "imbalance10")
BUDGETS = {"short": 3, "default": 10}
HELDOUT_RATIO = 0.2
BAR_MEAN, BAR_SEED = -0.5, -2.0  # Points: issue 23's bar.


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--budget", default="short", choices=sorted(BUDGETS))
  parser.add_argument("--sets", default=",".join(SETS))
  parser.add_argument("--rows", default=None,
                      help=f"default {','.join(ROWS)} (clean, no trusted "
                      f"set), else {','.join(ROBUST_ROWS)}; also "
                      f"{','.join(FIXED_LOSS_ROWS)}")
  parser.add_argument("--condition", default="clean", choices=CONDITIONS,
                      help="corruption of the training split")
  parser.add_argument("--trusted", type=int, default=0,
                      help="K > 0: K clean, class-balanced training examples "
                      "as the teacher's fixed validation set")
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
  if args.trusted < 0:
    parser.error("--trusted must be >= 0")
  tag = condition_tag(args)
  args.rows = args.rows or ",".join(ROWS if tag is None else ROBUST_ROWS)
  args.output = args.output or "_".join(
      ["docs/generalization", args.budget] + ([tag] if tag else []))
  return args


def condition_tag(args):
  """None for today's benchmark (clean, no trusted set), else its name:
  '<condition>' or '<condition>_trusted<K>'."""
  if args.condition == "clean" and not args.trusted:
    return None
  return args.condition + (f"_trusted{args.trusted}" if args.trusted else "")


def row_bindings(row):
  """The gin bindings of a row: a teaching row (compare_methods'
  TEACHING_ROWS) or a fixed-loss one (FIXED_LOSS_ROWS)."""
  if row in FIXED_LOSS_ROWS:
    return ["build.round = @FixedLossRound",
            f"SupervisedTask.fixed_loss = {FIXED_LOSS_ROWS[row][1]}"]
  for key, _, _, bindings in compare_methods.TEACHING_ROWS:
    if key == row:
      return list(bindings)
  raise SystemExit(f"unknown row {row!r}; choose from "
                   f"{ROWS + tuple(FIXED_LOSS_ROWS)}")


def _student(set_and_student, input_shape, num_classes):
  """A function of no argument building the cell's student."""
  from l2t_tf.students import digits_cnn  # pylint: disable=g-import-not-at-top
  from l2t_tf.students import small  # pylint: disable=g-import-not-at-top
  kind = set_and_student.split("/")[1]
  factory = {"cnn": digits_cnn.digits_cnn, "conv1d": small.conv1d,
             "mlp": small.mlp}[kind]
  return lambda: factory(input_shape=input_shape, num_classes=num_classes)


def cell_data(set_name, condition="clean", trusted=0, seed=0):
  """(train, validation or None, test, num_classes, Corrupted) of a cell.

  The test split is the data set's own, untouched; the training split is
  corrupted as `condition` says (`benchmark_sets.corrupt`, with the
  cell's seed), after `trusted` examples were set aside as the validation
  set.
  """
  from l2t_tf.data import benchmark_sets  # pylint: disable=g-import-not-at-top
  x, y, x_test, y_test = benchmark_sets.load(set_name)
  num_classes = int(max(y.max(), y_test.max())) + 1
  data = benchmark_sets.corrupt(x, y, condition, num_classes, int(seed),
                                trusted)
  validation = (None if data.x_trusted is None else
                (data.x_trusted, data.y_trusted))
  return (data.x, data.y), validation, (x_test, y_test), num_classes, data


def matched_rounds_per_epoch(bindings, examples):
  """Rounds per epoch of the random split of `examples` training examples.

  floor(validation_ratio * (1 - HELDOUT_RATIO) * examples /
  validation_batch_size) * rounds_per_validation_batch, with the Trainer
  settings of the recipe and `bindings`; None if `bindings` set
  Trainer.rounds_per_epoch (theirs holds).
  """
  import gin  # pylint: disable=g-import-not-at-top
  from l2t_tf import api  # pylint: disable=g-import-not-at-top
  from l2t_tf import config  # pylint: disable=g-import-not-at-top
  from l2t_tf import build  # pylint: disable=g-import-not-at-top
  config.parse([api.DEFAULT_RECIPE], bindings)
  defaults = {f.name: f.default for f in dataclasses.fields(build.Settings)}

  def value(name):
    try:
      return gin.query_parameter(f"Trainer.{name}")
    except ValueError:
      return defaults[name]
  names = ("rounds_per_epoch", "validation_ratio", "validation_batch_size",
           "rounds_per_validation_batch")
  bound = dict(zip(names, map(value, names)))
  gin.clear_config()  # Unlocked: `teach` parses again.
  if bound["rounds_per_epoch"] is not None:
    return None
  validation = int(bound["validation_ratio"] * (1 - HELDOUT_RATIO) *
                   examples)
  return max(validation // bound["validation_batch_size"], 1) * bound[
      "rounds_per_validation_batch"]


def run_one(cell, model_dir, budget, extra_bindings, condition="clean",
            trusted=0):
  """Runs one cell in this process (the subprocess's job)."""
  import l2t_tf  # pylint: disable=g-import-not-at-top
  set_and_student, row, seed = cell.split(":")
  train, validation, test, num_classes, data = cell_data(
      set_and_student.split("/")[0], condition, trusted, seed)
  # Imports the student's module (gin-configurable) before any parsing.
  student = _student(set_and_student, train[0].shape[1:], num_classes)
  bindings = row_bindings(row) + list(extra_bindings)
  settings = {}
  if validation is not None:
    rounds = matched_rounds_per_epoch(
        bindings, len(train[1]) + len(validation[1]))
    if rounds is not None:
      settings["rounds_per_epoch"] = rounds
  result = l2t_tf.teach(
      student, train, test_data=test, validation_data=validation, model_dir=model_dir,
      gin_bindings=bindings, teacher_epochs=BUDGETS[budget], seed=int(seed),
      heldout_ratio=HELDOUT_RATIO, progress=False, **settings)
  if condition != "clean" or trusted:
    with open(os.path.join(model_dir, "condition.json"), "w") as f:
      json.dump({"condition": condition, "trusted": trusted,
                 "train_size": len(data.y),
                 "flipped": int(data.flipped.sum()),
                 "train_class_counts": np.bincount(
                     data.y_true, minlength=num_classes).tolist(),
                 "validation_size": 0 if validation is None else len(
                     validation[1]), **settings}, f, indent=1)
  print(json.dumps({k: v for k, v in result.results.items()
                    if k != "history"}))


def _model_dir(args, set_and_student, row, seed):
  tag = condition_tag(args)
  return os.path.join(args.runs_dir, args.budget, *([tag] if tag else []),
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
  # By module name, so the cell runs whatever the working directory.
  command = [sys.executable, "-m", "l2t_tf.experiments.generalization",
             f"--one={cell}", f"--budget={args.budget}",
             f"--runs_dir={args.runs_dir}"]
  command += [f"--gin_bindings={b}" for b in args.gin_bindings]
  command += [f"--condition={args.condition}", f"--trusted={args.trusted}",
              f"--model_dir={model_dir}"]
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


_KEYS = ("test_accuracy", "comparison_test_accuracy", "heldout_accuracy",
         "comparison_heldout_accuracy", "fraction_updates_accepted",
         "dln_properness", "train_time_s", "rounds_done")
_TWIN_KEYS = ("comparison_test_accuracy", "comparison_heldout_accuracy")


def gap_over_se(gaps):
  """mean / (std / sqrt(n)) of paired differences (std with n - 1); None
  for fewer than 2 or all equal."""
  gaps = np.asarray([g for g in gaps if g is not None], np.float64)
  if len(gaps) < 2 or np.std(gaps, ddof=1) == 0:
    return None
  return float(np.mean(gaps) / (np.std(gaps, ddof=1) / np.sqrt(len(gaps))))


def _differences(seeds, key):
  """100 * (key - comparison_key) of the seeds that have both."""
  twin = "comparison_" + key
  return [100 * (s[key] - s[twin]) for s in seeds
          if s.get(key) is not None and s.get(twin) is not None]


def table(args):
  """{cell key: per-seed results and summaries} of the finished cells.

  A fixed-loss row (FIXED_LOSS_ROWS) has no twin of its own: its
  comparison_* figures are those of the CE twin of the TWIN_ROW cell of
  the same set and seed (read if it has run; `twin_row` says so).
  """
  cells = {}
  for set_and_student, row, seed in _cells(args):
    results = _finished(_model_dir(args, set_and_student, row, seed),
                        args.budget)
    if results is None:
      continue
    entry = cells.setdefault(f"{set_and_student}|{row}", {"seeds": {}})
    entry["seeds"][seed] = {k: results.get(k) for k in _KEYS}
    if row in FIXED_LOSS_ROWS:
      twin = _finished(_model_dir(args, set_and_student, TWIN_ROW, seed),
                       args.budget) or {}
      entry["twin_row"] = TWIN_ROW
      entry["seeds"][seed].update({k: twin.get(k) for k in _TWIN_KEYS})
  for entry in cells.values():
    seeds = list(entry["seeds"].values())

    def pct(key, seeds=seeds):
      return [100 * s[key] for s in seeds if s[key] is not None]
    gap = _differences(seeds, "test_accuracy")
    held = _differences(seeds, "heldout_accuracy")
    entry.update(taught=_summary(pct("test_accuracy")),
                 twin=_summary(pct("comparison_test_accuracy")),
                 gap=_summary(gap), gap_over_se=gap_over_se(gap),
                 heldout_gap=_summary(held),
                 meets_bar=bool(gap) and bool(np.mean(gap) >= BAR_MEAN and
                                              np.min(gap) >= BAR_SEED))
  return cells


def _fmt(summary):
  return "–" if summary is None else (
      f"{summary['mean']:.2f} ± {summary['std']:.2f}")


def _signed(value):
  return "–" if value is None else f"{value:+.2f}"


def _describe_condition(args):
  kind = {"clean": "clean training labels",
          "noise20": "20 % of the training labels flipped (symmetric)",
          "noise40": "40 % of the training labels flipped (symmetric)",
          "imbalance10": "a long-tailed training split (ratio 10)"}
  trusted = (f"a trusted set of {args.trusted} clean, class-balanced "
             f"training examples (set aside before the corruption) is the "
             f"teacher's fixed validation set" if args.trusted else
             "the teacher validates on a random part of the (as corrupted) "
             "training split")
  return f"Condition '{args.condition}': {kind[args.condition]}; {trusted}."


def write_table(args, cells, minutes):
  labels = {k: label for k, label, _, _ in compare_methods.TEACHING_ROWS}
  labels.update({k: label for k, (label, _) in FIXED_LOSS_ROWS.items()})
  lines = [f"## L2T-DLN beyond digits, budget '{args.budget}' "
           f"({BUDGETS[args.budget]} teacher epochs), condition "
           f"'{args.condition}', trusted {args.trusted}", "",
           "| data set / student | row | taught test acc. (%) | CE twin (%) "
           "| gap (points) | worst seed gap | gap / SE | held-out gap "
           "| seeds | bar |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for key, entry in cells.items():
    set_and_student, row = key.split("|")
    gap = entry["gap"] or {}
    bar = ("–" if not gap else "met" if entry["meets_bar"] else "NOT met")
    lines.append(
        f"| {set_and_student} | {labels.get(row, row)} | "
        f"{_fmt(entry['taught'])} | {_fmt(entry['twin'])} | "
        f"{_signed(gap.get('mean'))} | {_signed(gap.get('min'))} | "
        f"{_signed(entry['gap_over_se'])} | "
        f"{_fmt(entry['heldout_gap'])} | {gap.get('n', 0)} | {bar} |")
  command = ["python", "tools/generalization.py"] + sys.argv[1:]
  lines += ["", f"Made by `{shlex.join(command)}` ({minutes:.1f} minutes of "
            f"runs on {os.cpu_count()} CPUs, {platform.node()}, "
            f"{time.strftime('%Y-%m-%d')}; finished cells under "
            f"{args.runs_dir}/ are reused). {_describe_condition(args)} The "
            f"test split is clean. The bar (issue 23): mean gap >= "
            f"{BAR_MEAN} and every seed >= {BAR_SEED} points. gap / SE: the "
            f"mean gap over its standard error across seeds (> 2: more than "
            f"two standard errors). Held-out gap: the same difference on the "
            f"20 % selection split (as corrupted as the training split). A "
            f"fixed-loss row's 'taught' student is its own, its 'CE twin' "
            f"the twin of the '{TWIN_ROW}' row's cell of the same seed (the "
            f"same initial weights and batches); seeds counts the pairs.", ""]
  with open(args.output + ".md", "w") as f:
    f.write("\n".join(lines))
  with open(args.output + ".json", "w") as f:
    json.dump({"budget": args.budget, "condition": args.condition,
               "trusted": args.trusted, "cells": cells,
               "command": shlex.join(command)}, f, indent=1)


def main(argv=None):
  args = parse_args(argv)
  if args.one:
    run_one(args.one, args.model_dir, args.budget, args.gin_bindings,
            args.condition, args.trusted)
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
