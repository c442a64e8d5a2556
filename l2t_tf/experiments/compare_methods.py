r"""Runs every method of a Table 1-style comparison over seeds; one table.

  python tools/compare_methods.py                       # digits, 5 seeds
  python tools/compare_methods.py --seeds=1 --methods=ce,l2t_dln
  python tools/compare_methods.py --suite=teaching --prefix=digits_teaching \
      --output=docs/digits_teaching --title="..."    # issue 12's ablation

Each method is a gin file run by `tools/run_seeds.py` (one `python -m
l2t_tf.main` subprocess per seed, resumable) into
<runs_dir>/<prefix>_<method>_seeds/seed_<s>; then `tools/make_table.py`
writes <output>.md and <output>.json with one row per method (mean ± std of
the primary metric over seeds, median time per teacher round). The default
methods are the digits files: the same student, data order and student
budget for every method, only the loss (and whatever teaches it) differs.
"""
import argparse
import glob
import os
import platform
import shlex
import subprocess
import sys
import time

# (key, row label, gin file) of the digits comparison, Table 1's order.
DIGITS_METHODS = (
    ("ce", "CE", "digits_ce.gin"),
    ("smooth01", "Smooth 0-1", "digits_smooth01.gin"),
    ("lsoftmax", "Large-margin softmax",
     "digits_lsoftmax.gin"),
    ("l2t_dlf", "L2T-DLF (our reading)",
     "digits_l2t_dlf.gin"),
    ("arlf", "Adaptive robust loss", "digits_arlf.gin"),
    ("slf", "SLF (our reading)", "digits_slf.gin"),
    ("ala", "ALA (our reading)", "digits_ala.gin"),
    ("l2t_dln", "L2T-DLN", "digits_l2t_dln.gin"),
)


# The teaching ablation (issue 12): (key, row label, gin file, bindings).
# Every row has the default job's data, student and schedule (the release's
# density: stage III restarts from theta_0 on stage I's N batches, 5 rounds
# per validation batch, BatchNorm in training mode for e_val) and its own CE
# twin on the same batches; each row pins every extension of ours on or off,
# so a row means the same whatever the default gin file switches on.
_DEFAULT = "digits_l2t_dln.gin"
_EXTENSIONS = ("Trainer.dln_warm_start", "L2TRound.update_guard",
               "TeacherUpdater.zero_last_cell", "TeacherUpdater.descent_skip")
_PROPER = "L2TRound.update_guard_min_properness"


def _pinned(*on, proper=None, extra=()):
  """Bindings switching the extensions in `on` on and the others off."""
  return tuple(f"{name} = {name in on}" for name in _EXTENSIONS) + (
      f"{_PROPER} = {proper}",) + extra


_WARM, _GUARD, _ZERO, _SKIP = _EXTENSIONS
TEACHING_ROWS = (
    ("ce", "CE (fixed loss, same schedule)", _DEFAULT,
     ("build.round = @FixedLossRound",)),
    ("paper", "L2T-DLN as the paper (Kaiming DLN, release teacher, release "
     "density)", _DEFAULT, _pinned()),
    ("warm", "paper + DLN warm start", _DEFAULT, _pinned(_WARM)),
    ("guard", "paper + guarded update", _DEFAULT, _pinned(_GUARD)),
    ("zero_cell", "paper + zero-initialised last teacher cell", _DEFAULT,
     _pinned(_ZERO)),
    ("descent_skip", "paper + zero last cell + descent skip", _DEFAULT,
     _pinned(_ZERO, _SKIP)),
    ("all", "all of ours: warm start, descent teacher, guard with "
     "properness 0.9 (the default job)", _DEFAULT,
     _pinned(_WARM, _GUARD, _ZERO, _SKIP, proper=0.9)),
    ("all_no_properness", "all of ours, guard without properness", _DEFAULT,
     _pinned(_WARM, _GUARD, _ZERO, _SKIP)),
    ("warm_guard_zero", "warm start + guard + zero last cell (no descent "
     "skip)", _DEFAULT, _pinned(_WARM, _GUARD, _ZERO)),
    ("default", "warm start + guard", _DEFAULT, _pinned(_WARM, _GUARD)),
    ("all_bn_inference", "all of ours, e_val in BN inference mode", _DEFAULT,
     _pinned(_WARM, _GUARD, _ZERO, _SKIP, proper=0.9, extra=(
         "L2TRound.validation_bn_mode = 'inference'",))),
)
SUITE_DEFAULTS = {
    "table1": dict(prefix="digits", output="docs/digits_table1",
                   title="Digits, Table 1-style (same student, data order "
                   "and budget for every method)"),
    "teaching": dict(prefix="digits_teaching", output="docs/digits_teaching",
                     title="Digits: does L2T-DLN teach? (issue 12 ablation, "
                     "seeds 0-4)"),
}
SUITES = {"table1": tuple((k, label, gin, ()) for k, label, gin in
                          DIGITS_METHODS),
          "teaching": TEACHING_ROWS}


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--suite", default="table1", choices=sorted(SUITES),
                      help="table1: every method of Table 1; teaching: the "
                      "L2T-DLN ablation of issue 12")
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--methods", default=None,
                      help="comma-separated keys (default: all): " +
                      ",".join(key for key, _, _ in DIGITS_METHODS))
  parser.add_argument("--runs_dir", default="runs")
  parser.add_argument("--prefix", default=None,
                      help="run directory prefix (default per suite)")
  parser.add_argument("--output", default=None,
                      help="table path without extension (default per suite)")
  parser.add_argument("--title", default=None)
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="extra bindings for every run")
  parser.add_argument("--dry_run", action="store_true",
                      help="print the commands instead of running them")
  parser.add_argument("--table_only", action="store_true",
                      help="only tabulate the finished runs (no training; "
                      "rows without any finished seed are left out)")
  args = parser.parse_args(argv)
  for name, value in SUITE_DEFAULTS[args.suite].items():
    if getattr(args, name) is None:
      setattr(args, name, value)
  return args


def commands(args):
  """The run_seeds commands, then the make_table command."""
  chosen = SUITES[args.suite]
  if args.methods:
    keys = args.methods.split(",")
    unknown = set(keys) - {row[0] for row in chosen}
    if unknown:
      raise SystemExit(f"--methods: unknown {sorted(unknown)}; choose from "
                       f"{[row[0] for row in chosen]}.")
    chosen = [m for m in chosen if m[0] in keys]
  runs, rows = [], []
  for key, label, gin_file, bindings in chosen:
    output_dir = os.path.join(args.runs_dir, f"{args.prefix}_{key}_seeds")
    command = [sys.executable, "-m", "l2t_tf.experiments.run_seeds",
               f"--gin_file={gin_file}", f"--seeds={args.seeds}",
               f"--output_dir={output_dir}"]
    command += [f"--gin_bindings={b}" for b in
                list(bindings) + list(args.gin_bindings)]
    runs.append(command)
    rows.append(f"--row={label}={output_dir}/seed_*")
  table = [sys.executable, "-m", "l2t_tf.experiments.make_table",
           f"--title={args.title}", f"--output={args.output}"] + rows
  return runs, table


def _finished_rows_only(table):
  """The make_table command without rows that have no finished seed."""
  kept = []
  for arg in table:
    if arg.startswith("--row=") and not glob.glob(
        os.path.join(arg.partition("=")[2].rpartition("=")[2],
                     "results.json")):
      print(f"not run, left out: {arg[len('--row='):]}", flush=True)
      continue
    kept.append(arg)
  return kept


def main(argv=None):
  args = parse_args(argv)
  runs, table = commands(args)
  if args.table_only:
    table = _finished_rows_only(table)
  start = time.time()
  for command in ([] if args.table_only else runs) + [table]:
    print("$", shlex.join(command), flush=True)
    if not args.dry_run:
      subprocess.run(command, check=True)
  if args.dry_run:
    return
  command = ["python", "tools/compare_methods.py"] + list(
      sys.argv[1:] if argv is None else argv)
  with open(args.output + ".md", "a") as f:  # make_table wrote the table.
    f.write(f"\nMade by `{shlex.join(command)}` in "
            f"{(time.time() - start) / 60:.1f} minutes on {os.cpu_count()} "
            f"CPUs ({platform.node()}, {time.strftime('%Y-%m-%d')}); seeds "
            f"already finished under {args.runs_dir}/ are reused, not "
            f"rerun.\n")


if __name__ == "__main__":
  main()
