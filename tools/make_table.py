r"""Turns run directories into the paper's tables (Markdown and JSON).

  python tools/make_table.py --title="Table 1, CIFAR-10" \
      --row="ResNet8 CE=runs/cifar10_resnet8_ce_seeds/seed_*" \
      --row="ResNet8 L2T-DLN=runs/cifar10_resnet8_seeds/seed_*" \
      --output=runs/table1_cifar10

Each --row is `label=glob`: the glob names the model directories of one cell
(one per seed, as `tools/run_seeds.py` writes them), each holding the
`results.json` of a finished run. A row reports mean ± sample std over the
seeds of the run's primary metric (test accuracy, mIoU or mAP) and the median
time per teacher round (the Table 5 column). Rows come out in the order
given, so the same tool makes Table 1 (methods × models), Table 4 (validation
ratios), Table 5 (unroll lengths) and Table 6 (DLN optimisers).
"""
import argparse
import glob
import json
import os

import numpy as np


def load_cell(pattern):
  """results.json dicts of the model directories matching `pattern`."""
  results = []
  for directory in sorted(glob.glob(pattern)):
    path = os.path.join(directory, "results.json")
    if os.path.exists(path):
      with open(path) as f:
        results.append(json.load(f))
  if not results:
    raise SystemExit(f"No results.json under {pattern!r}: run the experiment "
                     f"(tools/run_seeds.py) first.")
  return results


def summarise(results):
  """{metric, mean, std, n, median_round_time_s} of one cell."""
  metric = results[0].get("primary_metric", "test_accuracy")
  values = np.array([r[metric] for r in results], float)
  times = [r["median_round_time_s"] for r in results
           if r.get("median_round_time_s") is not None]
  return {"metric": metric, "mean": float(values.mean()),
          "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
          "n": int(len(values)),
          "median_round_time_s": float(np.median(times)) if times else None}


def markdown(title, rows):
  """One Markdown table: label, metric (%) mean ± std, n, s / round."""
  lines = [f"## {title}", "", "| | metric | mean ± std (%) | seeds | "
           "s / teacher round |", "|---|---|---|---|---|"]
  for label, cell in rows:
    time = cell["median_round_time_s"]
    lines.append(
        f"| {label} | {cell['metric']} | {100 * cell['mean']:.2f} ± "
        f"{100 * cell['std']:.2f} | {cell['n']} | "
        f"{'' if time is None else f'{time:.3f}'} |")
  return "\n".join(lines) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--row", action="append", required=True,
                      help="label=glob of model directories (one per seed)")
  parser.add_argument("--title", default="Results")
  parser.add_argument("--output", default=None,
                      help="write <output>.md and <output>.json")
  args = parser.parse_args(argv)
  rows = []
  for spec in args.row:
    label, sep, pattern = spec.partition("=")
    if not sep:
      raise SystemExit(f"--row must be label=glob, got {spec!r}.")
    rows.append((label, summarise(load_cell(pattern))))
  table = markdown(args.title, rows)
  if args.output:
    with open(f"{args.output}.md", "w") as f:
      f.write(table)
    with open(f"{args.output}.json", "w") as f:
      json.dump({"title": args.title, "rows": [
          dict(label=label, **cell) for label, cell in rows]}, f, indent=1)
  print(table)
  return rows


if __name__ == "__main__":
  main()
