"""l2t_tf/experiments/benchmark_flags.py: the benchmarks' shared flags.

Each tool that uses it is run with --helpxml (no benchmark runs): its shared
flags must be listed as the tool's own, with the names, defaults and help
the tools had before the flags moved here, and the flags that
`speed_vs_peer.py` and `table5_time.py` pass on must be the benchmark's.
`speed_vs_peer.py --peer_python` runs the peer (in a child process, with a
stand-in for the benchmarks).
"""
import functools
import json
import os
import subprocess
import sys
from xml.etree import ElementTree

from absl import flags
from absl.testing import parameterized
import tensorflow as tf

from l2t_tf import hypergradient
from l2t_tf.experiments import benchmark_flags
from l2t_tf.experiments import table5_time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

try:
  import torch  # pylint: disable=g-import-not-at-top,unused-import
except ImportError:
  torch = None

ROUND = benchmark_flags.ROUND_FLAGS
MODE = ("unrolled", "Hypergradient mode.")
# tool -> {flag: (default, help)} of its shared flags, as the tool had them.
EXPECTED = {
    "benchmark_hypergrad": dict(ROUND, mode=MODE),
    "benchmark_torch_peer": dict(ROUND),
    "speed_vs_peer": dict(
        ROUND, rounds=(5, "Timed rounds per run (after a warm-up)."),
        mode=("unrolled",
              "Our hypergradient mode (the peer always unrolls).")),
    "benchmark_segmentation": {
        "unroll": (2, "N, student steps per stage."),
        "batch_size": (2, "Training batch size."),
        "val_batch_size": (8, "Validation batch size."),
        "rounds": (3, "Timed rounds (after one warm-up round)."),
        "mode": MODE},
}


def _env():
  """The environment of a tool run from this checkout."""
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=os.pathsep.join(
      p for p in (REPO, os.environ.get("PYTHONPATH")) if p))


@functools.lru_cache(maxsize=None)
def _flags_of(tool):
  """{name: (file, default, meaning)} from `python tools/<tool>.py --helpxml`."""
  done = subprocess.run(
      [sys.executable, os.path.join(REPO, "tools", f"{tool}.py"),
       "--helpxml"], env=_env(), capture_output=True, text=True, check=False)
  if not done.stdout.strip():  # absl exits with 1 after the help.
    raise RuntimeError(f"{tool} --helpxml failed: {done.stderr[-2000:]}")
  root = ElementTree.fromstring(done.stdout)
  return {f.findtext("name"): (f.findtext("file"), f.findtext("default"),
                               f.findtext("meaning"))
          for f in root.iter("flag")}


class BenchmarkFlagsTest(tf.test.TestCase, parameterized.TestCase):

  def test_defines_the_round_flags(self):
    values = benchmark_flags.define_round_flags(flag_values=flags.FlagValues())
    for name, (default, help_text) in ROUND.items():
      self.assertEqual(values[name].default, default)
      self.assertEqual(values[name].help, help_text)
    benchmark_flags.define_mode_flag(flag_values=values)
    self.assertEqual(values["mode"].default, "unrolled")

  def test_overrides_and_subsets(self):
    values = benchmark_flags.define_round_flags(
        ("unroll", "rounds"), defaults={"unroll": 2}, helps={"rounds": "R."},
        flag_values=flags.FlagValues())
    self.assertCountEqual(values, ["unroll", "rounds"])
    self.assertEqual((values["unroll"].default, values["rounds"].default),
                     (2, 5))
    self.assertEqual(values["rounds"].help, "R.")

  def test_modes_are_the_hypergradient_modes(self):
    self.assertEqual(benchmark_flags.MODES, hypergradient.MODES)

  @parameterized.parameters(*EXPECTED)
  def test_tool_has_its_flags(self, tool):
    if tool == "benchmark_torch_peer" and torch is None:
      self.skipTest("needs PyTorch")
    defined = _flags_of(tool)
    for name, (default, help_text) in EXPECTED[tool].items():
      file, tool_default, meaning = defined[name]
      self.assertEqual(os.path.basename(file), f"{tool}.py", name)
      self.assertEqual(tool_default, str(default), name)
      self.assertEqual(meaning.split(": ", 1)[-1], help_text, name)

  def test_forwarded_flags_are_the_benchmarks(self):
    ours = _flags_of("benchmark_hypergrad")
    args = table5_time.parse_args([])
    for argument in table5_time.benchmark_command(5, "reverse", args)[3:]:
      self.assertIn(argument[2:].split("=")[0], ours)
    self.assertContainsSubset(ROUND, ours)  # speed_vs_peer passes ROUND_FLAGS.
    if torch is not None:
      self.assertContainsSubset(ROUND, _flags_of("benchmark_torch_peer"))

  def test_peer_python(self):
    """--peer_python runs the peer, not ours, and the line records it."""
    self.assertEqual(_flags_of("speed_vs_peer")["peer_python"][1],
                     sys.executable)
    peer = os.path.join(self.get_temp_dir(), "python")
    os.symlink(sys.executable, peer)
    code = (
        "import json\n"
        "from absl import flags\n"
        "from l2t_tf.experiments import speed_vs_peer as s\n"
        f"flags.FLAGS(['x', '--peer_python={peer}', '--repeats=1'])\n"
        "print(json.dumps([s._command(f)[0] for f in ('torch', 'ours')]))\n"
        "s._run = lambda framework, lever=None: dict(\n"
        "    round_s=1.0, plain_step_s=0.1, overhead=1.0, peak_rss_mb=1.0,\n"
        "    framework=framework, lever=lever, load_average=[0.0] * 3,\n"
        "    others_running=2 if framework == 'torch' else 0)\n"
        "s.main([])\n")
    done = subprocess.run([sys.executable, "-c", code], env=_env(),
                          capture_output=True, text=True, check=False)
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    commands, line = [json.loads(l) for l in done.stdout.splitlines()[-2:]]
    self.assertEqual(commands, [peer, sys.executable])
    self.assertEqual(line["settings"]["peer_python"], peer)
    self.assertEqual(line["max_others_running_at_start"], 2)
    self.assertIn("2 other task(s) ran", done.stderr)
    missing = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "speed_vs_peer.py"),
         "--peer_python=/nonexistent/bin/python"], env=_env(),
        capture_output=True, text=True, check=False)
    self.assertNotEqual(missing.returncode, 0)
    self.assertIn("--peer_python '/nonexistent/bin/python'", missing.stderr)


if __name__ == "__main__":
  tf.test.main()
