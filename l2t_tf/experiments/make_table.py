r"""Turns run directories into the paper's tables (Markdown and JSON).

  python tools/make_table.py --title="Table 1, CIFAR-10" \
      --row="ResNet8 CE=runs/cifar10_resnet8_ce_seeds/seed_*" \
      --row="ResNet8 L2T-DLN=runs/cifar10_resnet8_seeds/seed_*" \
      --output=runs/table1_cifar10

Each --row is `label=glob`: the glob names the model directories of one cell
(one per seed, as `tools/run_seeds.py` writes them), each holding the
`results.json` of a finished run. A row reports mean ± sample std over the
seeds of the run's primary metric (test accuracy, mIoU or mAP), its minimum,
the CE comparison student trained on the same batches (when the runs have
one), the median time per teacher round (the Table 5 column) and per run,
and, for taught losses, the fraction of DLN updates kept and the DLN's
relative movement. Rows come out in the order
given, so the same tool makes Table 1 (methods × models), Table 4 (validation
ratios), Table 5 (unroll lengths) and Table 6 (DLN optimisers).
"""
import argparse
import glob
import json
import os

import numpy as np

from l2t_tf import strict_json


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


def _mean_std(values):
  values = np.asarray(values, float)
  return (float(values.mean()),
          float(values.std(ddof=1)) if len(values) > 1 else 0.0)


def _median(results, key):
  values = [r[key] for r in results if r.get(key) is not None]
  return float(np.median(values)) if values else None


def summarise(results):
  """One cell: the metric's mean, std, min and per-seed values over seeds.

  Also, where the runs report them: the CE comparison student's mean and
  std (`comparison_<metric>`), the median time per teacher round and per run
  (`train_time_s`), and the teaching diagnostics' means over seeds.
  """
  metric = results[0].get("primary_metric", "test_accuracy")
  values = [r[metric] for r in results]
  mean, std = _mean_std(values)
  cell = {"metric": metric, "mean": mean, "std": std,
          "min": float(np.min(values)), "n": len(values),
          "values": [float(v) for v in values],
          "median_round_time_s": _median(results, "median_round_time_s"),
          "median_train_time_s": _median(results, "train_time_s")}
  twin = [r[f"comparison_{metric}"] for r in results
          if r.get(f"comparison_{metric}") is not None]
  if len(twin) == len(results):
    cell["comparison_mean"], cell["comparison_std"] = _mean_std(twin)
  taught = [r for r in results if r.get("method", "l2t_dln") != "fixed_loss"]
  for key in ("fraction_updates_accepted", "dln_relative_change"):
    found = [r[key] for r in taught if r.get(key) is not None]
    if found and (any(found) or any("method" in r for r in taught)):
      cell[key] = float(np.mean(found))  # (Old fixed-loss runs: all 0.)
  return cell


def _cell_text(cell):
  """Markdown cells after the label, in the header's order."""
  pct = lambda v: f"{100 * v:.2f}"
  twin = (f"{pct(cell['comparison_mean'])} ± {pct(cell['comparison_std'])}"
          if "comparison_mean" in cell else "")
  number = lambda v, fmt: "" if v is None else format(v, fmt)
  return [cell["metric"], f"{pct(cell['mean'])} ± {pct(cell['std'])}",
          pct(cell["min"]), str(cell["n"]), twin,
          number(cell["median_round_time_s"], ".3f"),
          number(cell.get("median_train_time_s"), ".0f"),
          number(cell.get("fraction_updates_accepted"), ".2f"),
          number(cell.get("dln_relative_change"), ".3f")]


def markdown(title, rows):
  """One Markdown table, a row per cell (metric in %)."""
  header = ["", "metric", "mean ± std (%)", "min (%)", "seeds",
            "CE twin (%)", "s / teacher round", "s / run",
            "updates kept", "DLN moved (rel.)"]
  lines = [f"## {title}", "", "| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  for label, cell in rows:
    lines.append("| " + " | ".join([label] + _cell_text(cell)) + " |")
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
      strict_json.dump({"title": args.title, "rows": [
          dict(label=label, **cell) for label, cell in rows]}, f, indent=1)
  print(table)
  return rows


if __name__ == "__main__":
  main()
