r"""Runs every method of a Table 1-style comparison over seeds; one table.

  python tools/compare_methods.py                       # digits, 5 seeds
  python tools/compare_methods.py --seeds=1 --methods=ce,l2t_dln

Each method is a gin file run by `tools/run_seeds.py` (one `python -m
l2t_tf.main` subprocess per seed, resumable) into
<runs_dir>/<prefix>_<method>_seeds/seed_<s>; then `tools/make_table.py`
writes <output>.md and <output>.json with one row per method (mean ± std of
the primary metric over seeds, median time per teacher round). The default
methods are the digits files: the same student, data order and student
budget for every method, only the loss (and whatever teaches it) differs.
"""
import argparse
import os
import platform
import shlex
import subprocess
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))

# (key, row label, gin file) of the digits comparison, Table 1's order.
DIGITS_METHODS = (
    ("ce", "CE", "gin_configs/digits_baseline_ce.gin"),
    ("smooth01", "Smooth 0-1", "gin_configs/digits_baseline_smooth01.gin"),
    ("lsoftmax", "Large-margin softmax",
     "gin_configs/digits_baseline_lsoftmax.gin"),
    ("l2t_dlf", "L2T-DLF (our reading)",
     "gin_configs/digits_baseline_l2t_dlf.gin"),
    ("arlf", "Adaptive robust loss", "gin_configs/digits_baseline_arlf.gin"),
    ("slf", "SLF (our reading)", "gin_configs/digits_baseline_slf.gin"),
    ("ala", "ALA (our reading)", "gin_configs/digits_baseline_ala.gin"),
    ("l2t_dln", "L2T-DLN", "gin_configs/digits_l2t_dln.gin"),
)


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--methods", default=None,
                      help="comma-separated keys (default: all): " +
                      ",".join(key for key, _, _ in DIGITS_METHODS))
  parser.add_argument("--runs_dir", default="runs")
  parser.add_argument("--prefix", default="digits")
  parser.add_argument("--output", default="docs/digits_table1")
  parser.add_argument("--title", default="Digits, Table 1-style (same "
                      "student, data order and budget for every method)")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="extra bindings for every run")
  parser.add_argument("--dry_run", action="store_true",
                      help="print the commands instead of running them")
  return parser.parse_args(argv)


def commands(args):
  """The run_seeds commands, then the make_table command."""
  chosen = DIGITS_METHODS
  if args.methods:
    keys = args.methods.split(",")
    unknown = set(keys) - {key for key, _, _ in DIGITS_METHODS}
    if unknown:
      raise SystemExit(f"--methods: unknown {sorted(unknown)}; choose from "
                       f"{[key for key, _, _ in DIGITS_METHODS]}.")
    chosen = [m for m in DIGITS_METHODS if m[0] in keys]
  runs, rows = [], []
  for key, label, gin_file in chosen:
    output_dir = os.path.join(args.runs_dir, f"{args.prefix}_{key}_seeds")
    command = [sys.executable, os.path.join(TOOLS, "run_seeds.py"),
               f"--gin_file={gin_file}", f"--seeds={args.seeds}",
               f"--output_dir={output_dir}"]
    command += [f"--gin_bindings={b}" for b in args.gin_bindings]
    runs.append(command)
    rows.append(f"--row={label}={output_dir}/seed_*")
  table = [sys.executable, os.path.join(TOOLS, "make_table.py"),
           f"--title={args.title}", f"--output={args.output}"] + rows
  return runs, table


def main(argv=None):
  args = parse_args(argv)
  runs, table = commands(args)
  start = time.time()
  for command in runs + [table]:
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
