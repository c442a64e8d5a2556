r"""Runs an L2T-DLN experiment from gin files.

  python -m l2t_tf.main                                   # digits, offline
  python -m l2t_tf.main --gin_file=gin_configs/digits_l2t_dln.gin \
      --gin_bindings='Trainer.unroll_length = 10'

The last line on stdout is one JSON object with the results.
"""
import json
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import gin

from l2t_tf import config
from l2t_tf import train_eval as train_eval_lib

flags.DEFINE_multi_string("gin_file", [], "Gin files to parse, in order.")
flags.DEFINE_multi_string("gin_bindings", [],
                          "Gin bindings, e.g. 'Trainer.unroll_length = 5'.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  tf_logger = logging.getLogger("tensorflow")
  tf_logger.setLevel(logging.WARNING)
  try:
    config.parse(FLAGS.gin_file or [config.DEFAULT_GIN_FILE],
                 FLAGS.gin_bindings)
    results = train_eval_lib.train_eval()
  except config.UserError as e:
    # gin appends "In call to configurable ..." lines: context, not news.
    message = "\n".join(line for line in str(e).splitlines()
                        if not line.strip().startswith("In call to"))
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)
  except KeyboardInterrupt:
    sys.stderr.write("Interrupted; the last completed round is checkpointed. "
                     "Run the same command again to resume.\n")
    sys.exit(130)
  summary = {k: v for k, v in results.items() if k != "history"}
  print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
  app.run(main)
