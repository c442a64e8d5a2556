r"""Table 5's time column: seconds per teacher round against the unroll length N.

  python tools/table5_time.py
  python tools/table5_time.py --unrolls=1,5,15,25 --mode=reverse --rounds=3
  python tools/table5_time.py --dry_run

For the paper's student, the wide CIFAR ResNet8 (`cifar_resnet(depth=8,
width=64)`: 64/128/256 channels, ~1.24 M parameters), and each N, runs
`tools/benchmark_hypergrad.py` once as a subprocess (so every N has its own
peak resident memory and a fresh TensorFlow) and collects its JSON line.
`--mode=auto` uses the unrolled hypergradient for N <= 15 and reverse mode
(Eq. 4-6, memory flat in N) above; a run that fails in unrolled mode is
repeated in reverse mode (one log line, and the row says so), and a run that
fails in both is a row marked failed: the tool does not stop. The table
(N, mode, s / round, overhead = round / 2N plain SGD steps, peak RSS, trace
time, the paper's GPU time where it is known) is written to <output>.md and
<output>.json after every N, so an interrupted sweep keeps its finished rows.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import time

from l2t_tf import strict_json

# Run by module name (`python -m`), so whatever the working directory.
BENCHMARK = "l2t_tf.experiments.benchmark_hypergrad"
MODES = ("auto", "unrolled", "reverse")
# `auto` uses the unrolled engine up to this N and reverse mode above it.
AUTO_UNROLLED_MAX_N = 15
# Table 5 of the paper, seconds per teacher round on the authors' GPU. Only
# these three are known to us; the other N are left blank.
PAPER_GPU_SECONDS = {1: 1.0, 25: 13.4, 75: 76.7}
RESULT_KEYS = ("round_s", "plain_step_s", "overhead", "peak_rss_mb",
               "trace_s")


def _unrolls(text):
  values = [int(v) for v in text.split(",") if v.strip()]
  if not values or min(values) < 1:
    raise argparse.ArgumentTypeError(f"need positive integers, got {text!r}")
  return values


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--unrolls", type=_unrolls,
                      default=[1, 5, 10, 15, 25, 50, 75],
                      help="comma-separated unroll lengths N")
  parser.add_argument("--mode", choices=MODES, default="auto",
                      help=f"hypergradient mode; auto = unrolled for "
                           f"N <= {AUTO_UNROLLED_MAX_N}, reverse above")
  parser.add_argument("--width", type=int, default=64,
                      help="first-stage channels (the paper's ResNet8: 64)")
  parser.add_argument("--depth", type=int, default=8)
  parser.add_argument("--rounds", type=int, default=2,
                      help="timed rounds per N (after one warm-up round)")
  parser.add_argument("--output", default=os.path.join("docs", "table5_time"),
                      help="writes <output>.md and <output>.json")
  parser.add_argument("--dry_run", action="store_true",
                      help="print the benchmark commands and exit")
  return parser.parse_args(argv)


def mode_for(n, mode):
  """The hypergradient mode used for unroll length n."""
  if mode != "auto":
    return mode
  return "unrolled" if n <= AUTO_UNROLLED_MAX_N else "reverse"


def benchmark_command(n, mode, args):
  """The benchmark subprocess for one N in one (concrete) mode."""
  return [sys.executable, "-m", BENCHMARK, f"--depth={args.depth}",
          f"--width={args.width}", f"--unroll={n}", f"--rounds={args.rounds}",
          f"--mode={mode}"]


def run_benchmark(command, runner=subprocess.run):
  """Runs one benchmark; returns (its JSON dict or None, error text)."""
  try:
    done = runner(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True, check=False)
  except OSError as e:
    return None, str(e)
  lines = [l for l in (done.stdout or "").strip().splitlines()
           if l.startswith("{")]
  if done.returncode == 0 and lines:
    try:
      return json.loads(lines[-1]), ""
    except json.JSONDecodeError as e:
      return None, f"bad JSON line: {e}"
  tail = [l for l in (done.stderr or "").strip().splitlines() if l.strip()]
  reason = f"exit status {done.returncode}"
  if tail:
    reason += ": " + tail[-1][-300:]
  return None, reason


def measure(n, args, runner=subprocess.run, log=None):
  """One table row for unroll length n; falls back to reverse, never raises."""
  log = log or (lambda text: print(text, file=sys.stderr, flush=True))
  requested = mode_for(n, args.mode)
  row = {"unroll": n, "requested_mode": requested, "mode": requested,
         "fallback": None, "error": None,
         "paper_gpu_s": PAPER_GPU_SECONDS.get(n)}
  start = time.perf_counter()
  result, error = run_benchmark(benchmark_command(n, requested, args), runner)
  if result is None and requested == "unrolled":
    log(f"N={n}: unrolled mode failed ({error}); falling back to reverse mode.")
    row["fallback"] = error
    row["mode"] = "reverse"
    result, error = run_benchmark(benchmark_command(n, "reverse", args),
                                  runner)
  row["wall_s"] = round(time.perf_counter() - start, 1)
  if result is None:
    log(f"N={n}: {row['mode']} mode failed too ({error}); row marked failed.")
    row["error"] = error
  else:
    row.update({k: result.get(k) for k in RESULT_KEYS})
    row["traces"] = result.get("traces")
  return row


def machine_line():
  try:
    tf_version = importlib.metadata.version("tensorflow")
  except importlib.metadata.PackageNotFoundError:
    tf_version = "?"
  load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
  return (f"{platform.platform()}, {os.cpu_count()} CPU cores, Python "
          f"{platform.python_version()}, TensorFlow {tf_version}; load "
          f"average at start {load}")


def _cell(value, fmt):
  return "" if value is None else format(value, fmt)


def markdown(rows, args, command, machine, date, elapsed_s):
  """The table and its notes as Markdown."""
  header = ["N", "mode", "s / round", "overhead (round / 2N plain steps)",
            "peak RSS (MB)", "trace (s)", "paper, GPU (s / round)"]
  lines = [f"## Table 5, time per teacher round (CIFAR ResNet{args.depth}, "
           f"width {args.width})", "",
           "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for r in rows:
    mode = r["mode"]
    if r["fallback"]:
      mode += " (unrolled failed)"
    if r["error"]:
      cells = [str(r["unroll"]), mode + " — failed", "", "", "", "",
               _cell(r["paper_gpu_s"], "g")]
    else:
      cells = [str(r["unroll"]), mode, _cell(r["round_s"], ".2f"),
               _cell(r["overhead"], ".2f"), _cell(r["peak_rss_mb"], ".0f"),
               _cell(r["trace_s"], ".1f"), _cell(r["paper_gpu_s"], "g")]
    lines.append("| " + " | ".join(cells) + " |")
  auto = (f"`--mode=auto`: unrolled hypergradient for N <= "
          f"{AUTO_UNROLLED_MAX_N}, reverse mode (Eq. 4-6) above."
          if args.mode == "auto" else f"`--mode={args.mode}` for every N.")
  lines += [
      "", f"Command: `{command}`", "", f"Machine: {machine}.", "",
      f"Made {date}, {elapsed_s / 60:.1f} minutes for the sweep. "
      f"{auto} Each N is one `tools/benchmark_hypergrad.py` subprocess: "
      f"one warm-up round, then {args.rounds} timed rounds (median), batch "
      "25 / validation 100, random CIFAR-shaped data. The trace column is "
      "the warm-up round minus the median round, so it carries the "
      "round-to-round noise of a loaded machine (most at large N).", "",
      "A round is stages I-III of Algorithm 1: 2N student steps, two exact "
      "hypergradients, the teacher's update and learning step. The machine "
      "is a shared, loaded CPU box, so the absolute seconds are not "
      "comparable with the paper's GPU and vary between runs; the overhead "
      "column (round time over 2N plain SGD + cross-entropy steps of the "
      "same model, both measured in the same process) is the meaningful "
      "one. The paper's time is given only where it is known to us "
      "(N = 1, 25, 75).", ""]
  failed = [r for r in rows if r["fallback"] or r["error"]]
  for r in failed:
    if r["fallback"]:
      lines.append(f"N = {r['unroll']}: unrolled mode failed "
                   f"({r['fallback']}); the row is reverse mode.")
    if r["error"]:
      lines.append(f"N = {r['unroll']}: failed ({r['error']}).")
  if failed:
    lines.append("")
  return "\n".join(lines)


def write(rows, args, command, machine, date, elapsed_s):
  directory = os.path.dirname(args.output)
  if directory:
    os.makedirs(directory, exist_ok=True)
  with open(f"{args.output}.json", "w") as f:
    strict_json.dump(
        {"command": command, "machine": machine, "date": date,
         "elapsed_s": round(elapsed_s, 1), "depth": args.depth,
         "width": args.width, "rounds": args.rounds, "mode": args.mode,
         "auto_unrolled_max_n": AUTO_UNROLLED_MAX_N, "rows": rows},
        f, indent=1)
  table = markdown(rows, args, command, machine, date, elapsed_s)
  with open(f"{args.output}.md", "w") as f:
    f.write(table)
  return table


def main(argv=None, runner=subprocess.run):
  args = parse_args(argv)
  command = shlex.join(["python", "tools/table5_time.py"] +
                       (sys.argv[1:] if argv is None else list(argv)))
  if args.dry_run:
    for n in args.unrolls:
      mode = mode_for(n, args.mode)
      print(f"N={n} ({mode}): {shlex.join(benchmark_command(n, mode, args))}")
    return []
  machine = machine_line()
  date = datetime.date.today().isoformat()
  if args.mode == "auto":
    print(f"--mode=auto: unrolled for N <= {AUTO_UNROLLED_MAX_N}, reverse "
          "above.", file=sys.stderr, flush=True)
  start = time.perf_counter()
  rows = []
  table = ""
  for n in args.unrolls:
    print(f"N={n} ({mode_for(n, args.mode)}) ...", file=sys.stderr,
          flush=True)
    rows.append(measure(n, args, runner))
    table = write(rows, args, command, machine, date,
                  time.perf_counter() - start)
  print(table)
  return rows


if __name__ == "__main__":
  main()
