r"""Times L2T-DLN teacher rounds of PSPNet; prints one JSON line.

  python tools/benchmark_segmentation.py --crop=473 --depth=50 \
      --mode=reverse --rematerialize --dln_pixel_stride=8   # pspnet_voc.gin
  python tools/benchmark_segmentation.py --crop=32 --depth=14 --width=8

One teacher round (stages I-III of Algorithm 1 with N unrolled student steps
per stage, batch 2 / validation batch 8 as in the paper) of the segmentation
task (`SegmentationTask` losses: DLN(p, y) + 0.4 DLN(aux_p, y), validation
CE + 0.4 CE, label 255 ignored) on random VOC-shaped data, timed after a
warm-up round (tracing excluded). Output keys: round_s (median), trace_s
(first round minus round_s), peak_rss_mb (peak resident memory of this
process, which includes the graph's activations), traces.
"""
import functools
import resource
import statistics
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from l2t_tf import dln_updaters
from l2t_tf import experiment
from l2t_tf import strict_json
from l2t_tf.experiments import benchmark_flags
from l2t_tf.students import pspnet
from l2t_tf.tasks import segmentation

flags.DEFINE_integer("crop", 473, "Crop size (square input of the student).")
flags.DEFINE_integer("depth", 50,
                     f"Backbone depth, one of {sorted(pspnet.BLOCKS)}.")
flags.DEFINE_integer("width", 64, "First-stage channels of the backbone.")
benchmark_flags.define_round_flags(
    ("unroll", "batch_size", "val_batch_size", "rounds"),
    defaults={"unroll": 2, "batch_size": 2, "val_batch_size": 8, "rounds": 3})
flags.DEFINE_integer("dln_pixel_stride", 1,
                     "Apply the DLN to every s-th pixel (memory lever).")
flags.DEFINE_bool("rematerialize", False,
                  "Recompute backbone blocks in backward passes (memory lever).")
benchmark_flags.define_mode_flag()
FLAGS = flags.FLAGS


def _batches(rng, *shape):
  """Random normalised images and labels in 0..20 with 10 % ignore (255)."""
  c = FLAGS.crop
  x = rng.normal(size=shape + (c, c, 3)).astype(np.float32)
  y = rng.integers(0, 21, size=shape + (c, c)).astype(np.int32)
  y[rng.random(y.shape) < 0.1] = 255
  return tf.constant(x), tf.constant(y)


def main(argv):
  del argv
  rng = np.random.default_rng(0)
  student_fn = functools.partial(pspnet.pspnet, depth=FLAGS.depth,
                                 width=FLAGS.width,
                                 rematerialize=FLAGS.rematerialize)
  task = segmentation.SegmentationTask(
      student=student_fn, crop_size=FLAGS.crop,
      dln_pixel_stride=FLAGS.dln_pixel_stride)
  built = experiment.build_experiment(  # The trainer's wiring, seed 0.
      task, tf.distribute.get_strategy(), updater=dln_updaters.TeacherUpdater,
      train_comparison=False, learning_rate=0.1,
      hypergradient_mode=FLAGS.mode, seed=0)
  student, rounds = built.student, built.round
  n, times = FLAGS.unroll, []
  for _ in range(FLAGS.rounds + 1):
    train = _batches(rng, 2, n, FLAGS.batch_size)
    val = _batches(rng, FLAGS.val_batch_size)
    start = time.perf_counter()
    result = rounds(train, val)
    times.append(time.perf_counter() - start)
  round_s = statistics.median(times[1:])
  print(strict_json.dumps({
      "crop": FLAGS.crop, "depth": FLAGS.depth, "width": FLAGS.width,
      "unroll": n, "mode": FLAGS.mode, "batch_size": FLAGS.batch_size,
      "dln_pixel_stride": FLAGS.dln_pixel_stride,
      "rematerialize": FLAGS.rematerialize,
      "val_batch_size": FLAGS.val_batch_size,
      "student_params": student.count_params(),
      "round_s": round(round_s, 3), "trace_s": round(times[0] - round_s, 2),
      "peak_rss_mb": round(resource.getrusage(
          resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
      "traces": rounds.summary()["traces"],
      "skipped_updates": result.skipped_updates,
  }))


if __name__ == "__main__":
  app.run(main)
