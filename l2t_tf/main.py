r"""Runs an L2T-DLN experiment from gin files.

  python -m l2t_tf.main                                   # digits, offline
  python -m l2t_tf.main --gin_file=digits_l2t_dln.gin \
      --gin_bindings='Trainer.unroll_length = 10'

A --gin_file is a path, or the name of a gin file shipped in
`gin_configs/` (shipped in the package, found from any directory).

The last line on stdout is one JSON object with the results (strict JSON:
a NaN or infinite result is null, listed in "non_finite"). A user's mistake
(a bad binding, an unusable model_dir) is one line "error: ..." on stderr
and exit code 2.

Several workers (`get_strategy.name = 'multi_worker'`, cluster in TF_CONFIG;
see `l2t_tf.launch`) run this same command; only the chief prints the
results.
"""
import logging
import os
import sys

from absl import app
from absl import flags
from absl import logging as absl_logging
import tensorflow as tf

from l2t_tf import config
from l2t_tf import errors
from l2t_tf import strategy as strategy_lib
from l2t_tf import strict_json
from l2t_tf import tf_startup
from l2t_tf import train_eval as train_eval_lib
from l2t_tf import trainer as trainer_lib

flags.DEFINE_multi_string(
    "gin_file", [], "Gin files to parse, in order: paths, or names of the "
    "packaged ones (gin_configs/), e.g. cifar10_resnet8.gin.")
flags.DEFINE_multi_string("gin_bindings", [],
                          "Gin bindings, e.g. 'Trainer.unroll_length = 5'.")
flags.DEFINE_bool("override_config", False,
                  "Resume a run in train_eval.model_dir even though its "
                  "settings differ from the ones it was started with (the "
                  "results list the differences).")
FLAGS = flags.FLAGS


def _one_line(error):
  """A user error's message on one line (gin's parse errors have several)."""
  return " ".join(line.strip()
                  for line in errors.without_gin_context(error).splitlines()
                  if line.strip())


_HELP_FLAGS = ("--help", "-h", "-?", "--helpshort")


def _parse_flags(argv):
  """absl's parsing; --help (or -h) prints `config.help_text` and exits 0."""
  args = argv[1:argv.index("--")] if "--" in argv else argv[1:]
  if any(arg in _HELP_FLAGS for arg in args):
    flags_help = FLAGS.module_help(__name__).strip().split("\n", 1)[-1]
    print(config.help_text(__doc__, flags_help))
    sys.exit(0)
  return app.parse_flags_with_usage(argv)


def main(argv):
  del argv
  tf_logger = logging.getLogger("tensorflow")
  tf_logger.setLevel(logging.WARNING)
  tf_startup.drop_tensorflow_python_info(absl_logging.get_absl_handler())
  try:
    config.parse(FLAGS.gin_file or [config.DEFAULT_GIN_FILE],
                 FLAGS.gin_bindings)
    results = train_eval_lib.train_eval(
        override_config=FLAGS.override_config)
  except config.UserError as e:
    sys.stderr.write(f"error: {_one_line(e)}\n")
    sys.exit(2)
  except strategy_lib.WorkerLost as e:
    sys.stderr.write(f"error: {errors.without_gin_context(e)}\n")
    sys.exit(3)
  except tf.errors.AlreadyExistsError as e:
    # A TensorFlow graph-optimiser (grappler) bug on the gradient of the
    # unrolled while loop with large students. `hypergradient.function`
    # avoids the known cause (the memory optimizer's AddN rewrite), and the
    # trainer retries its first rounds in reverse mode (issue 13); this is
    # the last resort for what those do not cover (a later round, several
    # workers, reverse mode itself).
    sys.stderr.write(
        f"error: {e.message.splitlines()[0]}\nTensorFlow's graph optimiser "
        "failed on the gradient of the unrolled loop of a large student; use "
        "--gin_bindings=\"L2TRound.hypergradient_mode = 'reverse'\" (exact "
        "too, memory flat in N). The last completed round is checkpointed.\n")
    sys.exit(4)
  except (KeyboardInterrupt, trainer_lib.Interrupted):
    saved = ("the last completed round is checkpointed"
             if "TF_CONFIG" not in os.environ else
             "the workers resume from the last checkpoint")
    sys.stderr.write(f"Interrupted; {saved}. "
                     "Run the same command again to resume.\n")
    sys.exit(130)
  if results.get("worker", 0):
    return  # The chief (worker 0) prints the results.
  summary = {k: v for k, v in results.items() if k != "history"}
  print(strict_json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
