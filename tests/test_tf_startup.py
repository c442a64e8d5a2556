"""TensorFlow's start-up noise stays off stderr (l2t_tf/tf_startup.py)."""
import logging
import os
import subprocess
import sys

import tensorflow as tf

from l2t_tf import tf_startup

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Lines TensorFlow 2.21 printed on this CPU machine before the fix.
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are "
    "written to STDERR\n",
    "I0000 00:00:1796173050.212754   26594 port.cc:153] oneDNN custom "
    "operations are on.\n",
    "I0000 00:00:1796173050.213135   26594 cudart_stub.cc:31] Could not find "
    "cuda drivers on your machine, GPU will not be used.\n",
    "I0000 00:00:1796173050.258699   26594 cpu_feature_guard.cc:227] This "
    "TensorFlow binary is optimized to use available CPU instructions\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other "
    "operations, rebuild TensorFlow with the appropriate compiler flags.\n",
    "E0000 00:00:1796173072.769974   26692 cuda_platform.cc:52] failed call "
    "to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR "
    "(303)\n",
    "E0000 00:00:1796173072.769974   26692 cuda_dnn.cc:8310] Unable to "
    "register cuDNN factory: Attempting to register factory for plugin cuDNN "
    "when one has already been registered\n",
]
KEPT = [
    "E0000 00:00:1796173072.769974   26692 op_kernel.cc:1840] OP_REQUIRES "
    "failed: out of memory\n",
    "/x/site-packages/keras/src/foo.py:12: UserWarning: something\n",
    "error: bad gin configuration\n",
]


def _run(args, **env):
  """Runs python `args` in a temp dir with the default log level."""
  environ = {k: v for k, v in os.environ.items()
             if k != "TF_CPP_MIN_LOG_LEVEL"}
  environ.update(env)
  environ["PYTHONPATH"] = os.pathsep.join(
      [REPO] + os.environ.get("PYTHONPATH", "").split(os.pathsep))
  return subprocess.run([sys.executable] + args, capture_output=True,
                        text=True, timeout=300, env=environ, check=False,
                        cwd=os.path.dirname(REPO))


class TfStartupTest(tf.test.TestCase):

  def test_noise_lines_are_recognised_and_others_kept(self):
    for line in NOISE:
      self.assertTrue(tf_startup.is_noise(line), line)
    for line in KEPT:
      self.assertFalse(tf_startup.is_noise(line), line)

  def test_import_and_help_print_no_tensorflow_start_up_lines(self):
    code = "import l2t_tf, tensorflow as tf; print(tf.constant(1.0) + 1.0)"
    for args, status, stdout in ((["-c", code], 0, "2.0"),
                                 (["-m", "l2t_tf.main", "--help"], 0,
                                  "--gin_file")):
      with self.subTest(args[-1]):
        out = _run(args)
        self.assertEqual(out.returncode, status, out.stderr[-3000:])
        self.assertIn(stdout, out.stdout)
        for text in ("cuInit", "cuda", "absl::InitializeLog", "oneDNN"):
          self.assertNotIn(text, out.stderr)

  def test_import_after_tensorflow_or_keras_prints_nothing(self):
    # What `import tensorflow` prints is not ours; nothing may follow it,
    # from `import l2t_tf` or (its device query, captured) the first op.
    for first in ("tensorflow", "keras"):
      with self.subTest(first):
        out = _run(["-c", f"import sys; import {first}; "
                    "sys.stderr.write('MARK\\n'); sys.stderr.flush(); "
                    "import l2t_tf; import tensorflow as tf; "
                    "print(tf.constant(1.0) + 1.0)"])
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        self.assertIn("2.0", out.stdout)
        self.assertIn("MARK\n", out.stderr)
        self.assertEqual(out.stderr.split("MARK\n", 1)[1], "")

  def test_log_level_below_two_shows_everything(self):
    self.assertFalse(tf_startup.tensorflow_logs_wanted())
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    try:
      self.assertTrue(tf_startup.tensorflow_logs_wanted())
    finally:
      os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    out = _run(["-c", "import l2t_tf"], TF_CPP_MIN_LOG_LEVEL="0")
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    if not any(tf_startup.is_noise(l) for l in out.stderr.splitlines(True)):
      self.skipTest("this TensorFlow build prints no start-up lines")

  def test_tensorflow_python_info_is_dropped_ours_and_warnings_kept(self):
    handler = logging.Handler()
    tf_startup.drop_tensorflow_python_info(handler)

    def passes(path, level):
      record = logging.LogRecord("absl", level, path, 1, "m", None, None)
      return bool(handler.filter(record))

    library = os.path.join("site-packages", "tensorflow", "python", "x.py")
    self.assertFalse(passes(library, logging.INFO))
    self.assertTrue(passes(library, logging.WARNING))
    self.assertTrue(passes(os.path.join("l2t_tf", "trainer.py"),
                           logging.INFO))


if __name__ == "__main__":
  tf.test.main()
