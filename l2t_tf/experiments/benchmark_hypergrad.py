r"""Times L2T-DLN teacher rounds against plain SGD steps; prints one JSON line.

  python tools/benchmark_hypergrad.py --depth=8 --width=16 --unroll=5
  python tools/benchmark_hypergrad.py --unroll=75 --mode=reverse

A teacher round (stages I-III of Algorithm 1: 2N student steps, two unrolled
hypergradients, the teacher's update and learning step) of a CIFAR ResNet on
random CIFAR-shaped data is timed after a warm-up round (tracing excluded),
and so is one plain SGD + cross-entropy step of the same model in a
`tf.function`. Output keys: round_s (median), plain_step_s (median),
overhead = round_s / (2N * plain_step_s), peak_rss_mb (peak resident memory
of this process up to the end of the timed rounds), trace_s (first round minus round_s),
and the levers used (issue 13; `tools/speed_vs_peer.py --levers` compares them):
--fused_batch_norm, --jit_compile (XLA for the plain step and, by the gin knob
`loop_jit_compile.enabled`, for the round's loop functions), --data_format,
--inter_op_threads / --intra_op_threads (0: TF's default), and
TF_ENABLE_ONEDNN_OPTS from the environment.
"""
import functools
import os
import resource
import statistics
import time

from absl import app
from absl import flags
import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln_updaters
from l2t_tf import hypergradient
from l2t_tf import experiment
from l2t_tf import strict_json
from l2t_tf.experiments import benchmark_flags
from l2t_tf.students import cifar_resnet
from l2t_tf.tasks import synthetic

benchmark_flags.define_round_flags()
benchmark_flags.define_mode_flag()
flags.DEFINE_bool("fused_batch_norm", False,
                  "FusedBatchNormV3 forward in the student's BatchNorms.")
flags.DEFINE_bool("jit_compile", False,
                  "XLA-compile the round's loop functions and the plain step.")
flags.DEFINE_enum("data_format", "channels_last",
                  cifar_resnet.DATA_FORMATS, "The student's layout.")
flags.DEFINE_integer("inter_op_threads", 0, "TF inter-op threads (0: default).")
flags.DEFINE_integer("intra_op_threads", 0, "TF intra-op threads (0: default).")
FLAGS = flags.FLAGS


def _task():
  """The random CIFAR-shaped task of the flags' student."""
  student = functools.partial(cifar_resnet.cifar_resnet, depth=FLAGS.depth,
                              width=FLAGS.width,
                              data_format=FLAGS.data_format)
  return synthetic.SyntheticImageTask(num_classes=FLAGS.classes,
                                      student=student)


def _plain_step_seconds(task, student, rng, steps):
  """Median time of one SGD+CE step in a tf.function (tracing excluded)."""
  variables = student.trainable_variables

  @tf.function(jit_compile=FLAGS.jit_compile)
  def step(x, y):
    with tf.GradientTape() as tape:
      loss = hypergradient.sparse_cross_entropy(y, student(x, training=True))
    for v, g in zip(variables, tape.gradient(loss, variables)):
      v.assign_sub(0.1 * g)
    return loss

  data = [task.data.batch(rng, (FLAGS.batch_size,)) for _ in range(10)]
  step(*data[0]).numpy()
  times = []
  for i in range(steps):
    x, y = data[i % len(data)]
    start = time.perf_counter()
    step(x, y).numpy()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _set_levers():
  """Applies the lever flags before any TensorFlow op runs."""
  if FLAGS.inter_op_threads:
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
  if FLAGS.intra_op_threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
  gin.bind_parameter("fused_batch_norm.enabled", FLAGS.fused_batch_norm)
  if FLAGS.jit_compile:  # The round's loop functions: hypergradient.function.
    gin.bind_parameter("loop_jit_compile.enabled", True)


def main(argv):
  del argv
  _set_levers()
  rng = np.random.default_rng(0)
  task = _task()
  built = experiment.build_experiment(  # The trainer's wiring, seed 0.
      task, tf.distribute.get_strategy(), updater=dln_updaters.TeacherUpdater,
      train_comparison=False, learning_rate=0.1,
      hypergradient_mode=FLAGS.mode, seed=0)
  student, rounds = built.student, built.round
  n = FLAGS.unroll
  times = []
  train = None
  for _ in range(FLAGS.rounds + 1):
    del train  # Free the previous round's batches before making new ones.
    train = task.data.batch(rng, (2, n, FLAGS.batch_size))
    val = task.data.batch(rng, (FLAGS.val_batch_size,))
    start = time.perf_counter()
    rounds(train, val)
    times.append(time.perf_counter() - start)
  round_s = statistics.median(times[1:])
  peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  plain = _plain_step_seconds(task, keras.models.clone_model(student), rng,
                              max(2 * n, 10))
  print(strict_json.dumps({
      "depth": FLAGS.depth, "width": FLAGS.width, "unroll": n,
      "mode": FLAGS.mode, "batch_size": FLAGS.batch_size,
      "val_batch_size": FLAGS.val_batch_size,
      "round_s": round(round_s, 4), "plain_step_s": round(plain, 5),
      "overhead": round(round_s / (2 * n * plain), 3),
      "peak_rss_mb": round(peak_rss_mb, 1),
      "trace_s": round(times[0] - round_s, 2),
      "traces": rounds.summary()["traces"],
      "fused_batch_norm": FLAGS.fused_batch_norm,
      "jit_compile": FLAGS.jit_compile, "data_format": FLAGS.data_format,
      "inter_op_threads": FLAGS.inter_op_threads,
      "intra_op_threads": FLAGS.intra_op_threads,
      "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
  }))


if __name__ == "__main__":
  app.run(main)
