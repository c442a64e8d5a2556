r"""Our teaching round against the PyTorch peer's, interleaved; one JSON line.

  python tools/speed_vs_peer.py --unroll=5 --repeats=3
  python tools/speed_vs_peer.py --unroll=25 --mode=reverse \
      --extra_ours="--rounds=3"
  python tools/speed_vs_peer.py --levers=all   # issue 13's levers too

Runs `tools/benchmark_hypergrad.py` (ours) and
`tools/benchmark_torch_peer.py` (torch) as subprocesses, alternately (ours,
torch, ours, torch, ...) `--repeats` times, so that a change of the load on a
shared machine hits both alike, with the same depth, width, unroll, batch
sizes, rounds and classes (and --mode for ours, --threads for torch). Each
prints one JSON line; this prints one JSON line with, per framework ("ours",
"torch"), the medians of round_s, plain_step_s, overhead and peak_rss_mb
over the repeats, plus round_ratio = ours / torch median round_s,
plain_step_ratio likewise, the settings and the raw runs.

`--levers` adds runs of ours with one speed lever each (`LEVERS`: a flag of
benchmark_hypergrad.py or an environment variable), interleaved with the
two above; the line then also has, per lever, its medians and
round_vs_ours / plain_step_vs_ours (the lever's median over ours' without
it) and round_vs_torch. Nothing is
asserted: the numbers are measurements. Children inherit this process'
niceness and environment (PYTHONPATH gets the repository root).

The peer runs with `--peer_python` (default: this interpreter), so that
torch may live in another environment than TensorFlow; the line's
settings record it. The peer runs at its own defaults (issue 25):
OMP_WAIT_POLICY is left unset unless `--peer_omp_wait_policy` sets it
(PASSIVE is fair only on a loaded machine, and a figure measured so must
say so). Every run records the 1, 5, 15-minute load averages when it
started (`load_average`) and how many other tasks were running then
(`others_running`: the median over a second of /proc/loadavg's runnable
count, less this process). A speed claim is made on a quiet machine: a
warning is printed when another task ran at the start of a run. The load
average alone cannot say so: each run's own threads keep it near their
number for minutes after the run (`max_load_at_start` is kept as a figure).
"""
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags

from l2t_tf import strict_json
from l2t_tf.experiments import benchmark_flags

HERE = os.path.dirname(os.path.abspath(__file__))
# The directory holding the l2t_tf package (the repository root in a
# checkout): the children's PYTHONPATH, so they run this very package.
REPO = os.path.dirname(os.path.dirname(HERE))
# The argv prefix of each benchmark. Ours by module name; the peer by its
# file, run as a script, so that its process never imports l2t_tf (whose
# __init__ would load TensorFlow next to torch).
SCRIPTS = {"ours": ["-m", "l2t_tf.experiments.benchmark_hypergrad"],
           "torch": [os.path.join(HERE, "benchmark_torch_peer.py")]}
LOADAVG = "/proc/loadavg"
SHARED = tuple(benchmark_flags.ROUND_FLAGS)  # Passed on to both benchmarks.
KEYS = ("round_s", "plain_step_s", "overhead", "peak_rss_mb")
#: lever -> (extra flags of benchmark_hypergrad.py, extra environment).
LEVERS = {
    "fused_batch_norm": (["--fused_batch_norm"], {}),
    "jit_compile": (["--jit_compile"], {}),
    "channels_first": (["--data_format=channels_first"], {}),
    "onednn_off": ([], {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "inter_op_1": (["--inter_op_threads=1"], {}),
    "intra_op_1": (["--intra_op_threads=1"], {}),
}

benchmark_flags.define_round_flags(helps={
    "rounds": "Timed rounds per run (after a warm-up)."})
flags.DEFINE_integer("repeats", 3, "Runs of each benchmark, interleaved.")
benchmark_flags.define_mode_flag(
    "Our hypergradient mode (the peer always unrolls).")
flags.DEFINE_integer("threads", None, "The peer's --threads (default: its "
                     "own, os.cpu_count()).")
flags.DEFINE_string("extra_ours", "", "More flags for ours, one shell string.")
flags.DEFINE_string("extra_torch", "", "More flags for the peer.")
flags.DEFINE_string("peer_python", sys.executable, "The Python interpreter "
                    "that runs the PyTorch peer (one with torch installed, "
                    "e.g. a separate virtual environment's bin/python); "
                    "ours always runs with this process' own.")
flags.DEFINE_enum("peer_omp_wait_policy", None, ["ACTIVE", "PASSIVE"],
                  "The peer's OMP_WAIT_POLICY (default: unset, torch's own).")
flags.DEFINE_list("levers", [], f"Levers to time too: 'all' or some of "
                  f"{sorted(LEVERS)}.")
FLAGS = flags.FLAGS


def _command(framework, lever=None):
  """The argv of one benchmark run."""
  python = FLAGS.peer_python if framework == "torch" else sys.executable
  argv = [python] + SCRIPTS[framework]
  argv += [f"--{name}={getattr(FLAGS, name)}" for name in SHARED]
  if framework == "ours":
    argv += [f"--mode={FLAGS.mode}"] + shlex.split(FLAGS.extra_ours)
    if lever:
      argv += LEVERS[lever][0]
  else:
    if FLAGS.threads:
      argv.append(f"--threads={FLAGS.threads}")
    argv += shlex.split(FLAGS.extra_torch)
  return argv


def runnable(loadavg_text):
  """The runnable count of a /proc/loadavg line ('0.6 1.2 2.3 3/512 99')."""
  return int(loadavg_text.split()[3].split("/")[0])


def others_running(samples=11, interval_s=0.1):
  """Median count of other runnable tasks over about a second; None off Linux.

  /proc/loadavg counts this process, which is running while it reads.
  """
  if not os.path.exists(LOADAVG):
    return None
  counts = []
  for _ in range(samples):
    with open(LOADAVG) as f:
      counts.append(runnable(f.read()) - 1)
    time.sleep(interval_s)
  return int(statistics.median(counts))


def _run(framework, lever=None):
  """Runs one benchmark; returns its JSON line as a dict (exits on failure)."""
  env = dict(os.environ, **(LEVERS[lever][1] if lever else {}))
  if framework == "torch":
    env.pop("OMP_WAIT_POLICY", None)
    if FLAGS.peer_omp_wait_policy:
      env["OMP_WAIT_POLICY"] = FLAGS.peer_omp_wait_policy
  load = [round(v, 2) for v in os.getloadavg()]
  others = others_running()
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (REPO, env.get("PYTHONPATH")) if p)
  argv = _command(framework, lever)
  print(f"running {lever or framework}: {shlex.join(argv[1:])}",
        file=sys.stderr, flush=True)
  done = subprocess.run(argv, env=env, capture_output=True, text=True,
                        check=False)
  lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
  if done.returncode or not lines:
    sys.stderr.write(done.stderr[-3000:])
    sys.exit(f"error: {framework} benchmark failed (exit {done.returncode}).")
  return dict(json.loads(lines[-1]), framework=framework, lever=lever,
              load_average=load, others_running=others)


def _summary(runs):
  """Medians of KEYS over one framework's runs."""
  return {k: statistics.median(r[k] for r in runs) for k in KEYS}


def _levers():
  levers = sorted(LEVERS) if FLAGS.levers == ["all"] else FLAGS.levers
  unknown = set(levers) - set(LEVERS)
  if unknown:
    sys.exit(f"error: unknown --levers {sorted(unknown)}; choose from "
             f"{sorted(LEVERS)} or 'all'.")
  return levers


def _lever_summary(runs, ours, torch):
  summary = _summary(runs)
  return dict(summary,
              round_vs_ours=round(summary["round_s"] / ours["round_s"], 3),
              plain_step_vs_ours=round(
                  summary["plain_step_s"] / ours["plain_step_s"], 3),
              round_vs_torch=round(summary["round_s"] / torch["round_s"], 3))


def _check_peer_python():
  """Exits with a message unless --peer_python names a program."""
  if shutil.which(FLAGS.peer_python) is None:
    sys.exit(f"error: --peer_python {FLAGS.peer_python!r} is not an "
             f"executable file or a program on PATH.")


def main(argv):
  del argv
  _check_peer_python()
  levers, runs = _levers(), []
  for _ in range(FLAGS.repeats):
    for framework, lever in [("ours", None), ("torch", None)] + [
        ("ours", lever) for lever in levers]:
      runs.append(_run(framework, lever))
  plain = lambda f: [r for r in runs if r["framework"] == f and not r["lever"]]
  ours, torch = _summary(plain("ours")), _summary(plain("torch"))
  max_load = max(r["load_average"][0] for r in runs)
  others = [r["others_running"] for r in runs
            if r.get("others_running") is not None]
  max_others = max(others) if others else None
  if max_others:
    print(f"warning: {max_others} other task(s) ran at the start of a run; "
          f"the machine was not quiet, so the ratios are not a fair speed "
          f"claim.", file=sys.stderr)
  print(strict_json.dumps({
      "settings": {name: getattr(FLAGS, name) for name in SHARED + (
          "mode", "repeats", "threads", "extra_ours", "extra_torch",
          "peer_omp_wait_policy", "peer_python")},
      "max_load_at_start": max_load,
      "max_others_running_at_start": max_others,
      "ours": ours, "torch": torch,
      "levers": {lever: _lever_summary(
          [r for r in runs if r["lever"] == lever], ours, torch)
                 for lever in levers},
      "round_ratio": round(ours["round_s"] / torch["round_s"], 3),
      "plain_step_ratio": round(ours["plain_step_s"] / torch["plain_step_s"],
                                3),
      "runs": runs,
  }))


if __name__ == "__main__":
  app.run(main)
