"""tools/table5_time.py: commands, mode choice, fallback and the table.

No benchmark runs: a fake runner stands in for the subprocess.
"""
import importlib.util
import json
import os
import subprocess
import sys

import tensorflow as tf

from l2t_tf.experiments import table5_time


def _line(n, mode, round_s):
  return json.dumps({"depth": 8, "width": 64, "unroll": n, "mode": mode,
                     "round_s": round_s, "plain_step_s": 0.1,
                     "overhead": round(round_s / (2 * n * 0.1), 3),
                     "peak_rss_mb": 1500.0 + n, "trace_s": 12.5,
                     "traces": 2})


class FakeRunner:
  """Records commands; fails unrolled mode for the N in `fail_unrolled`."""

  def __init__(self, fail_unrolled=(), fail_all=()):
    self.commands = []
    self.fail_unrolled = set(fail_unrolled)
    self.fail_all = set(fail_all)

  def __call__(self, command, **kwargs):
    del kwargs
    self.commands.append(command)
    flags = dict(a[2:].split("=", 1) for a in command if a.startswith("--"))
    n, mode = int(flags["unroll"]), flags["mode"]
    if n in self.fail_all or (mode == "unrolled" and n in self.fail_unrolled):
      return subprocess.CompletedProcess(
          command, 1, stdout="",
          stderr="lots of log\nAlreadyExistsError: AddN_3/tmp_var\n")
    return subprocess.CompletedProcess(
        command, 0, stdout="some noise\n" + _line(n, mode, 0.8 * n) + "\n",
        stderr="")


class Table5TimeTest(tf.test.TestCase):

  def test_defaults(self):
    args = table5_time.parse_args([])
    self.assertEqual(args.unrolls, [1, 5, 10, 15, 25, 50, 75])
    self.assertEqual((args.width, args.depth, args.rounds, args.mode),
                     (64, 8, 2, "auto"))
    self.assertEqual(args.output, os.path.join("docs", "table5_time"))
    self.assertEqual(table5_time.parse_args(["--unrolls=3,7"]).unrolls,
                     [3, 7])
    with self.assertRaises(SystemExit):
      table5_time.parse_args(["--unrolls=0,5"])

  def test_mode_selection(self):
    self.assertEqual([table5_time.mode_for(n, "auto")
                      for n in (1, 5, 10, 15, 25, 50, 75)],
                     ["unrolled"] * 4 + ["reverse"] * 3)
    self.assertEqual(table5_time.mode_for(75, "unrolled"), "unrolled")
    self.assertEqual(table5_time.mode_for(1, "reverse"), "reverse")

  def test_command_per_n(self):
    args = table5_time.parse_args(["--rounds=3", "--width=16"])
    command = table5_time.benchmark_command(25, "reverse", args)
    self.assertEqual(command[0], sys.executable)
    # By module name (`python -m`): it runs whatever the working directory.
    self.assertEqual(command[1:3],
                     ["-m", "l2t_tf.experiments.benchmark_hypergrad"])
    self.assertTrue(os.path.exists(importlib.util.find_spec(
        command[2]).origin))
    self.assertEqual(command[3:], ["--depth=8", "--width=16", "--unroll=25",
                                   "--rounds=3", "--mode=reverse"])

  def test_dry_run_runs_nothing(self):
    runner = FakeRunner()
    out = os.path.join(self.get_temp_dir(), "dry")
    self.assertEqual(table5_time.main(["--dry_run", f"--output={out}"],
                                      runner), [])
    self.assertEmpty(runner.commands)
    self.assertFalse(os.path.exists(f"{out}.md"))

  def test_sweep_writes_table_and_json(self):
    runner = FakeRunner()
    out = os.path.join(self.get_temp_dir(), "sub", "t5")
    rows = table5_time.main([f"--output={out}", "--unrolls=1,15,25"], runner)
    self.assertEqual([c[-1] for c in runner.commands],
                     ["--mode=unrolled", "--mode=unrolled", "--mode=reverse"])
    self.assertEqual([r["mode"] for r in rows],
                     ["unrolled", "unrolled", "reverse"])
    self.assertEqual([r["paper_gpu_s"] for r in rows], [1.0, None, 13.4])
    with open(f"{out}.md") as f:
      text = f.read()
    self.assertIn("| 1 | unrolled | 0.80 | 4.00 | 1501 | 12.5 | 1 |", text)
    self.assertIn("| 15 | unrolled | 12.00 | 4.00 | 1515 | 12.5 |  |", text)
    self.assertIn("| 25 | reverse | 20.00 | 4.00 | 1525 | 12.5 | 13.4 |",
                  text)
    self.assertIn("`python tools/table5_time.py --output=", text)
    self.assertIn("N <= 15", text)
    self.assertIn("overhead column", text)
    self.assertIn("Machine: ", text)
    with open(f"{out}.json") as f:
      saved = json.load(f)
    self.assertLen(saved["rows"], 3)
    self.assertEqual(saved["rows"][2]["round_s"], 20.0)
    self.assertEqual(saved["width"], 64)

  def test_unrolled_failure_falls_back_to_reverse(self):
    runner = FakeRunner(fail_unrolled={5})
    logged = []
    args = table5_time.parse_args([])
    row = table5_time.measure(5, args, runner, logged.append)
    self.assertEqual([c[-1] for c in runner.commands],
                     ["--mode=unrolled", "--mode=reverse"])
    self.assertEqual((row["requested_mode"], row["mode"]),
                     ("unrolled", "reverse"))
    self.assertIn("AlreadyExistsError", row["fallback"])
    self.assertIsNone(row["error"])
    self.assertEqual(row["round_s"], 4.0)
    self.assertLen(logged, 1)
    self.assertIn("falling back to reverse", logged[0])
    text = table5_time.markdown([row], args, "cmd", "m", "d", 60.0)
    self.assertIn("| 5 | reverse (unrolled failed) | 4.00 |", text)

  def test_failure_in_both_modes_is_a_row_not_a_crash(self):
    runner = FakeRunner(fail_all={50})
    out = os.path.join(self.get_temp_dir(), "fail")
    rows = table5_time.main([f"--output={out}", "--unrolls=15,50",
                             "--mode=unrolled"], runner)
    self.assertLen(runner.commands, 3)  # 15; 50 unrolled, then reverse.
    self.assertIsNone(rows[0]["error"])
    self.assertIn("exit status 1", rows[1]["error"])
    with open(f"{out}.md") as f:
      text = f.read()
    self.assertIn("| 50 | reverse (unrolled failed) — failed |", text)
    self.assertIn("`--mode=unrolled` for every N", text)


if __name__ == "__main__":
  tf.test.main()
