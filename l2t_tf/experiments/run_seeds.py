r"""Runs one experiment over several seeds and tabulates the results.

  python tools/run_seeds.py --gin_file=digits_l2t_dln.gin
  python tools/run_seeds.py --gin_file=cifar10_resnet8.gin \
      --seeds=5 --gin_bindings='ClassificationTask.data_dir = "/data/tfds"'

Each seed s is one `python -m l2t_tf.main` subprocess with the extra bindings
`Trainer.seed = s` and `train_eval.model_dir = '<output_dir>/seed_<s>'` (so a
crashed or interrupted seed does not take the others down, and running the
same command again resumes every unfinished seed from its checkpoints). The
results are written to <output_dir>/results.md and results.json: per seed and
as mean +- sample standard deviation (n - 1) over seeds of test_accuracy and,
when the run trained the CE baseline alongside, comparison_test_accuracy, plus
the median time per teacher round.
"""
import argparse
import json
import os
import platform
import shlex
import subprocess
import sys

import numpy as np

from l2t_tf import strict_json

ACCURACY_KEYS = ("test_accuracy", "comparison_test_accuracy")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--gin_file", action="append", required=True,
                      help="gin file(s), parsed in order")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="extra gin bindings for every seed")
  parser.add_argument("--seeds", type=int, default=5,
                      help="number of seeds (0, 1, ..., seeds - 1)")
  parser.add_argument("--first_seed", type=int, default=0)
  parser.add_argument("--output_dir", default=None,
                      help="default: runs/<first gin file name>_seeds")
  return parser.parse_args(argv)


def run_seed(gin_files, bindings, seed, model_dir):
  """Runs one seed in a subprocess; returns its results dict."""
  command = [sys.executable, "-m", "l2t_tf.main"]
  command += [f"--gin_file={f}" for f in gin_files]
  command += [f"--gin_bindings={b}" for b in bindings + [
      f"Trainer.seed = {seed}", f"train_eval.model_dir = '{model_dir}'"]]
  print(f"seed {seed}: {' '.join(command)}", file=sys.stderr, flush=True)
  done = subprocess.run(command, stdout=subprocess.PIPE, text=True,
                        check=False)
  lines = done.stdout.strip().splitlines()
  if done.returncode or not lines:
    raise SystemExit(f"seed {seed} failed (exit status {done.returncode}); "
                     f"its log is above, its model_dir is {model_dir}.")
  return json.loads(lines[-1])


def summarise(per_seed):
  """{key: {mean, std, n}} over seeds for the accuracies and round time."""
  summary = {}
  for key in ACCURACY_KEYS + ("median_round_time_s",):
    values = [r[key] for r in per_seed if r.get(key) is not None]
    if not values:
      continue
    if key == "median_round_time_s":
      summary[key] = {"median": float(np.median(values)), "n": len(values)}
    else:
      summary[key] = {"mean": float(np.mean(values)),
                      "std": float(np.std(values, ddof=1))
                             if len(values) > 1 else 0.0,
                      "n": len(values)}
  return summary


def _pct(value):
  return f"{100 * value:.2f}"


def markdown(title, per_seed, summary, command):
  """The results table as Markdown (accuracies in %)."""
  keys = [k for k in ACCURACY_KEYS if k in summary]
  header = ["seed"] + [k.replace("_", " ") + " (%)" for k in keys] + [
      "median s / round", "rounds"]
  rows = [[str(r["seed"])] + [_pct(r[k]) for k in keys] +
          [f"{r.get('median_round_time_s') or 0:.3f}", str(r["rounds_done"])]
          for r in per_seed]
  rows.append([f"**mean ± std (n={len(per_seed)})**"] + [
      f"**{_pct(summary[k]['mean'])} ± {_pct(summary[k]['std'])}**"
      for k in keys] + [
          f"{summary.get('median_round_time_s', {}).get('median', 0):.3f}",
          ""])
  lines = [f"## {title}", "", f"Command: `{command}`", "",
           f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores, "
           f"Python {platform.python_version()}.", "",
           "| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def main(argv=None):
  args = parse_args(argv)
  name = os.path.splitext(os.path.basename(args.gin_file[0]))[0]
  output_dir = args.output_dir or os.path.join("runs", f"{name}_seeds")
  os.makedirs(output_dir, exist_ok=True)
  per_seed = []
  for seed in range(args.first_seed, args.first_seed + args.seeds):
    model_dir = os.path.join(output_dir, f"seed_{seed}")
    results = run_seed(args.gin_file, args.gin_bindings, seed, model_dir)
    results["seed"] = seed
    per_seed.append(results)
  summary = summarise(per_seed)
  command = shlex.join(["python", "tools/run_seeds.py"] +
                       (sys.argv[1:] if argv is None else list(argv)))
  with open(os.path.join(output_dir, "results.json"), "w") as f:
    strict_json.dump({"gin_files": args.gin_file,
                      "gin_bindings": args.gin_bindings, "command": command,
                      "summary": summary, "per_seed": per_seed}, f, indent=1)
  table = markdown(name, per_seed, summary, command)
  with open(os.path.join(output_dir, "results.md"), "w") as f:
    f.write(table)
  print(table)


if __name__ == "__main__":
  main()
