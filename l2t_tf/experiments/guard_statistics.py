r"""What the update guard sees: e_2 - e_1 against the noise of e_val.

  python tools/guard_statistics.py RUN_DIR [RUN_DIR ...]     # JSON

Issue 23, item 2. Reads each L2T-DLN run's `history.json` (per round: e1 =
e_val after stage I with phi_0, e2 = after stage III with the updated
phi_1, on the same validation batch; `update_helped`, `update_accepted`)
and reports:

  rounds, fraction_helped (e_2 < e_1), fraction_accepted (the guard kept
  the update: helped and, with a properness bound, still proper),
  median_abs_update_effect = median |e_2 - e_1|,
  e_val_batch_noise: the standard deviation of e_val that comes from *which*
  validation batch of `--batch_size` examples is drawn, estimated from e_1
  itself: consecutive rounds that keep their validation batch (the
  release's `rounds_per_validation_batch`) differ by the student's progress
  only, rounds that change it by progress plus two batch draws, so
  sigma^2 = (Var(delta e_1 | new batch) - Var(delta e_1 | same batch)) / 2
  (0 if negative).

A ratio median_abs_update_effect / e_val_batch_noise well below 1 means a
DLN update's effect is smaller than the luck of the validation batch: the
guard's e_2 <= e_1 (a paired test on the same batch) is not fooled by that
luck, but what it accepts need not help on other data.
"""
import argparse
import json
import os

import numpy as np


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("run_dirs", nargs="+")
  parser.add_argument("--rounds_per_validation_batch", type=int, default=5)
  return parser.parse_args(argv)


def statistics(rounds, rounds_per_validation_batch):
  """The guard's statistics of one run's per-round history (a list)."""
  rounds = [r for r in rounds if "e2" in r]
  if len(rounds) < 2:
    return None
  e1 = np.array([r["e1"] for r in rounds])
  e2 = np.array([r["e2"] for r in rounds])
  index = np.array([r["round"] for r in rounds])
  delta = np.diff(e1)
  consecutive = np.diff(index) == 1
  new_batch = (index[1:] - 1) % rounds_per_validation_batch == 0
  same = delta[consecutive & ~new_batch]
  changed = delta[consecutive & new_batch]
  noise = None
  if len(same) > 2 and len(changed) > 2:
    noise = float(np.sqrt(max(0.0, (np.var(changed) - np.var(same)) / 2)))
  effect = float(np.median(np.abs(e2 - e1)))
  return {"rounds": len(rounds),
          "fraction_helped": float(np.mean(e2 < e1)),
          "fraction_accepted": float(np.mean(
              [r.get("update_accepted", 1.0) for r in rounds])),
          "median_abs_update_effect": effect,
          "median_e1": float(np.median(e1)),
          "e_val_batch_noise": noise,
          "effect_over_noise": (effect / noise) if noise else None}


def main(argv=None):
  args = parse_args(argv)
  out = {}
  for run_dir in args.run_dirs:
    with open(os.path.join(run_dir, "history.json")) as f:
      history = json.load(f)
    out[run_dir] = statistics(history["rounds"],
                              args.rounds_per_validation_batch)
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  main()
