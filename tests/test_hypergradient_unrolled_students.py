"""Issue 13: the unrolled hypergradient runs for every shipped student.

For each student of the package (wide CIFAR ResNet8/20/32, WRN, NASNet-A,
PSPNet, the YOLOv3 head) a small variant built by the same code, with its
task's real DLN, student loss and validation error, goes through stage I of
a teaching round (`rounds.L2TRound`, the function the trainer runs: N = 2 SGD
steps, then e_val and de_val/dphi, Eq. 4-6) in unrolled mode, twice (the
grappler failure of issue 13 appeared at the second call). Both calls must
give the same finite, nonzero hypergradient, equal to reverse mode's to
float64 round-off. Deeper and slower variants run with L2T_SLOW_TESTS=1.

The real sizes (WRN-28-10 at 32 x 32, NASNet-A Mobile at 224 x 224, PSPNet
at 473 x 473, YOLOv3-416) are measured outside the tests (README, "Large
students in unrolled mode").
"""
import functools
import os
import tempfile
import unittest

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln_updaters
from l2t_tf import rounds as rounds_lib
from l2t_tf.data import classification_data
from l2t_tf.students import cifar_resnet
from l2t_tf.students import nasnet
from l2t_tf.students import pspnet
from l2t_tf.students import wide_resnet
from l2t_tf.students import yolov3
from l2t_tf.tasks import classification
from l2t_tf.tasks import detection
from l2t_tf.tasks import segmentation
from l2t_tf.tasks import yolo_loss

import fake_coco  # pylint: disable=g-bad-import-order

N, BATCH, VALIDATION_BATCH = 2, 2, 3
DTYPE = "float64"


class _Images(classification_data.ClassificationData):
  """Shapes only: the test feeds its own random batches."""
  name = "images"

  def __init__(self, input_shape, num_classes=5):
    self.input_shape, self.num_classes = tuple(input_shape), num_classes


# name -> (student factory, input shape): small variants of the shipped
# classification students, built by the same functions (the release's wide
# ResNets differ from these only in `width`, 64, and WRN-28-10 in depth and
# widths; keras.applications' NASNet-A in its cell sizes).
CLASSIFIERS = {
    "resnet8": (functools.partial(cifar_resnet.cifar_resnet, depth=8,
                                  width=4), (8, 8, 3)),
    "resnet20": (functools.partial(cifar_resnet.cifar_resnet, depth=20,
                                   width=4), (8, 8, 3)),
    "resnet32": (functools.partial(cifar_resnet.cifar_resnet, depth=32,
                                   width=4), (8, 8, 3)),
    "wrn": (functools.partial(wide_resnet.wide_resnet, depth=10,
                              widen_factor=2, base_width=2), (8, 8, 3)),
    "nasnet": (functools.partial(nasnet.nasnet, penultimate_filters=96,
                                 num_blocks=1, stem_block_filters=8),
               (32, 32, 3)),
}


# Tracing the second-order graphs dominates (seconds per case, 2 CPU cores):
# FAST runs in about 80 s; SLOW (more blocks of the same code, NASNet's many
# cells, PSPNet with the gin file's memory levers) adds about 4 minutes.
FAST = ("resnet8", "wrn", "pspnet", "yolov3_head")
SLOW = ("resnet20", "resnet32", "nasnet", "pspnet_gin_levers")


def _classification(name, rng):
  """(task, batch maker): `batch(*lead)` -> (x, y) with leading axes `lead`."""
  student_fn, shape = CLASSIFIERS[name]
  task = classification.ClassificationTask(dataset=_Images(shape),
                                           student=student_fn, dtype=DTYPE)

  def batch(*lead):
    return (tf.constant(rng.normal(size=lead + shape)),
            tf.constant(rng.integers(0, 5, lead), tf.int32))
  return task, batch


def _segmentation(rng, rematerialize):
  """PSPNet (depth 14, dropout 0.1 as shipped), the gin's memory levers or not.

  Levers: rematerialised backbone blocks, the DLN on every 2nd pixel.
  Returns (task, batch maker) as `_classification`.
  """
  crop = 16
  task = segmentation.SegmentationTask(
      student=functools.partial(pspnet.pspnet, depth=14, width=4,
                                rematerialize=rematerialize),
      crop_size=crop, dln_pixel_stride=2 if rematerialize else 1,
      dtype=DTYPE)

  def batch(*lead):
    labels = rng.integers(0, 21, lead + (crop, crop))
    labels[rng.random(labels.shape) < 0.1] = 255
    return (tf.constant(rng.normal(size=lead + (crop, crop, 3))),
            tf.constant(labels, tf.int32))
  return task, batch


def _detection(rng):
  """YOLOv3 head on a tiny Darknet's features of 64 x 64 images.

  The task reads a fake COCO (class count, category ids) but the batches are
  random features with boxes encoded as the task's pipeline does. Returns
  (task, batch maker) as `_classification`.
  """
  size, boxes = 64, 3
  root = tempfile.mkdtemp()
  fake_coco.write_coco(root, num_train=3, num_val=2)
  task = detection.DetectionTask(
      data_dir=root, image_size=size, max_boxes=boxes,
      backbone=functools.partial(yolov3.darknet53_features,
                                 **yolov3.DARKNET_TINY),
      head=functools.partial(yolov3.yolov3_head, neck_filters=(4, 4, 4)),
      dtype=DTYPE)
  shapes = [tuple(o.shape[1:]) for o in task.backbone.outputs]

  def batch(*lead):
    x = tuple(tf.constant(rng.normal(size=lead + s)) for s in shapes)
    xy = rng.uniform(0, 40, lead + (boxes, 2))
    wh = rng.uniform(4, 24, lead + (boxes, 2))
    labels = rng.integers(0, task.num_classes, lead + (boxes,))
    labels[..., -1] = -1  # Padding.
    corners = np.concatenate([xy, xy + wh], -1)
    targets = yolo_loss.encode_targets(  # As the task's data pipeline does.
        tf.constant(corners.reshape(-1, boxes, 4)),
        labels.reshape(-1, boxes), size, task.num_classes)
    targets = tf.reshape(targets, lead + tuple(targets.shape[1:]))
    return x, {"boxes": tf.constant(corners),
               "classes": tf.constant(labels, tf.int32), "targets": targets}
  return task, batch


def _set_up(name, rng):
  """(task, batch maker, student learning rate) of student `name`."""
  if name in CLASSIFIERS:
    return _classification(name, rng) + (0.1,)
  if name.startswith("pspnet"):
    return _segmentation(rng, name == "pspnet_gin_levers") + (0.1,)
  return _detection(rng) + (1e-3,)  # yolov3_coco.gin's learning rate.


def _stage1(task, student, dln, mode, learning_rate):
  """The teaching round's compiled stage I+II, without writing back.

  `stage3='release'`: stage I leaves the student as it was, so calls can be
  repeated and compared.
  """
  parts = rounds_lib.RoundParts(
      strategy=tf.distribute.get_strategy(), task=task, student=student,
      learning_rate=learning_rate, dln=dln)
  return rounds_lib.L2TRound(parts, updater=dln_updaters.TeacherUpdater,
                             hypergradient_mode=mode, stage3="release").stage1


class UnrolledStudentsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters((n, n) for n in FAST)
  def test_unrolled_runs_twice_and_matches_reverse(self, name):
    self._check(name)

  @unittest.skipUnless(os.environ.get("L2T_SLOW_TESTS"), "L2T_SLOW_TESTS=1")
  @parameterized.named_parameters((n, n) for n in SLOW)
  def test_slow_unrolled_runs_twice_and_matches_reverse(self, name):
    self._check(name)

  def _check(self, name):
    """Stage I of student `name`, unrolled twice and reverse once."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    task, batch, learning_rate = _set_up(name, rng)
    student, dln = task.build_student(), task.build_dln()
    batches, validation = batch(N, BATCH), batch(VALIDATION_BATCH)
    weights = [v.numpy() for v in student.variables]

    unrolled = _stage1(task, student, dln, "unrolled", learning_rate)
    first = unrolled(batches, validation)
    second = unrolled(batches, validation)
    reverse = _stage1(task, student, dln, "reverse", learning_rate)(
        batches, validation)

    self.assertTrue(bool(first["finite"]))
    norm = float(first["hypergradient_norm"])
    self.assertGreater(norm, 0.0)
    self.assertEqual(float(first["validation_error"]),
                     float(second["validation_error"]))
    for a, b in zip(first["gradients"], second["gradients"]):
      self.assertAllEqual(a, b)
    self.assertAllClose(first["validation_error"],
                        reverse["validation_error"], rtol=1e-12)
    for a, b in zip(first["gradients"], reverse["gradients"]):
      self.assertAllClose(a, b, rtol=1e-7, atol=1e-10 * norm)
    for v, w in zip(student.variables, weights):  # Not written back.
      self.assertAllEqual(v, w)


if __name__ == "__main__":
  tf.test.main()
