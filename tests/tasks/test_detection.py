"""Detection (issue 7): COCO reader, letterbox, YOLOv3 loss, COCOeval, gin.

The data tests write a tiny synthetic COCO (tests/fake_coco.py) in the
official extracted layout and read it with the real pycocotools reader.
"""
import json
import os
import subprocess
import sys
import tempfile
from unittest import mock

import gin
import keras
import numpy as np
from pycocotools import cocoeval
import tensorflow as tf

from l2t_tf import config
from l2t_tf import errors
from l2t_tf import train_eval as train_eval_lib
from l2t_tf.data import coco
from l2t_tf.data import letterbox
from l2t_tf.students import yolov3
from l2t_tf.tasks import detection_metrics
from l2t_tf.tasks import yolo_dln
from l2t_tf.tasks import yolo_loss
import gradcheck
import trainer_testlib

import fake_coco  # pylint: disable=g-bad-import-order

LOG2 = np.log(2.0)
softplus = lambda z: np.log1p(np.exp(z))


def _numpy_iou(a, b):
  wh = np.maximum(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0)
  inter = wh[0] * wh[1]
  area = lambda z: (z[2] - z[0]) * (z[3] - z[1])
  return inter / (area(a) + area(b) - inter)


def _numpy_pairwise_iou(a, b):
  """IoU [..., K, M] of xyxy boxes a [..., K, 4], b [..., M, 4]; 0 if empty."""
  a, b = a[..., :, None, :], b[..., None, :, :]
  wh = np.maximum(np.minimum(a[..., 2:], b[..., 2:]) -
                  np.maximum(a[..., :2], b[..., :2]), 0)
  inter = wh[..., 0] * wh[..., 1]
  area = lambda z: (z[..., 2] - z[..., 0]) * (z[..., 3] - z[..., 1])
  union = area(a) + area(b) - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _random_boxes(rng, lead, n):
  """xyxy boxes [*lead, n, 4] with padding (-1), empty and repeated ones."""
  xy = rng.uniform(-10, 400, lead + (n, 2))
  boxes = np.concatenate([xy, xy + rng.uniform(0, 120, lead + (n, 2))], -1)
  boxes[..., -2:, :] = -1.0  # Padding.
  boxes[..., 0, 2] = boxes[..., 0, 0]  # Zero width.
  return boxes


class BoxesTest(tf.test.TestCase):
  """Keras' box utilities where ours were, against numpy references."""

  def test_box_iou_matches_numpy(self):
    rng = np.random.default_rng(0)
    a = _random_boxes(rng, (3,), 400)
    b = np.concatenate([_random_boxes(rng, (3,), 7), a[:, 1:3]], 1)
    expected = _numpy_pairwise_iou(a, b)
    self.assertGreater(np.sum(expected > 0.5), 6)  # Incl. IoU 1 repeats.
    compiled = tf.function(yolo_loss.box_iou, jit_compile=True)
    for dtype in ("float32", "float64"):
      for iou_fn in (yolo_loss.box_iou, compiled):
        with self.subTest(dtype=dtype, compiled=iou_fn is compiled):
          iou = iou_fn(tf.constant(a, dtype), tf.constant(b, dtype))
          self.assertEqual(iou.dtype, dtype)
          self.assertAllClose(iou, expected, atol=1e-6, rtol=0)
          self.assertAllEqual(iou > 0.5, expected > 0.5)

  def test_decoded_boxes_match_numpy(self):
    size, classes = 64, 2
    rng = np.random.default_rng(1)
    pred = rng.normal(size=(2, yolo_loss.num_anchor_cells(size), 5 + classes))
    cells, strides, anchors = yolo_loss.layout(size)
    centre = (1 / (1 + np.exp(-pred[..., :2])) + cells) * strides
    wh = np.exp(pred[..., 2:4]) * anchors
    expected = np.concatenate([centre - wh / 2, centre + wh / 2], -1)
    for dtype in ("float32", "float64"):
      with self.subTest(dtype):
        boxes = yolo_loss.decode_boxes(tf.constant(pred, dtype), size)
        self.assertEqual(boxes.dtype, dtype)
        self.assertAllClose(boxes, expected, rtol=1e-5)


class LossTest(tf.test.TestCase):
  """The three terms on a hand-made target (S = 64, C = 2)."""

  def test_terms_duplicates_padding_and_ignore_mask(self):
    size, classes = 64, 2
    anchors = yolov3.relative_anchors() * size
    # Box A is anchor 7 exactly (stride 32, local anchor 1), centre (40, 20):
    # cell (i=1, j=0), offsets (0.25, 0.625), log-size targets 0. A' is the
    # same box with class 1, later: it replaces A on that cell and anchor.
    w, h = anchors[7]
    box_a = [40 - w / 2, 20 - h / 2, 40 + w / 2, 20 + h / 2]
    # Box B: 1.2 x anchor 0 (stride 8, local 0), centre (12, 12): cell (1, 1),
    # offsets (0.5, 0.5), log-size targets log 1.2.
    wb, hb = 1.2 * anchors[0]
    box_b = [12 - wb / 2, 12 - hb / 2, 12 + wb / 2, 12 + hb / 2]
    boxes = np.full([2, 5, 4], -1.0)
    boxes[0, :3] = [box_a, box_a, box_b]
    labels = np.full([2, 5], -1)
    labels[0, :3] = [0, 1, 0]
    y = {"boxes": tf.constant(boxes), "classes": tf.constant(labels)}
    outputs = [np.zeros([2, g, g, 3 * (5 + classes)]) for g in (2, 4, 8)]
    outputs[0][0, 0, 1, (5 + classes) + 5:(5 + classes) * 2] = [2.0, -1.0]
    # A stride-16 anchor (anchor 3, cell i=2, j=1) predicting box A exactly:
    # IoU 1 > 0.5, not responsible, so ignored in l_conf.
    aw, ah = anchors[3]
    outputs[1][0, 1, 2, :4] = [0.0, -np.log(3.0), np.log(w / aw),
                               np.log(h / ah)]
    terms = yolo_loss.loss_terms(y, [tf.constant(o) for o in outputs], size,
                                 classes).numpy()

    expected_cls = softplus(2.0) + softplus(1.0) + 2 * LOG2  # A' wins.
    expected_loc = (0.5 * (2 - w * h / size**2) * (0.25**2 + 0.125**2) +
                    0.5 * (2 - wb * hb / size**2) * 2 * np.log(1.2)**2)
    responsible = {(0, 0, 1, 1), (2, 1, 1, 0)}  # (level, j, i, anchor).
    sigmoid = lambda z: 1 / (1 + np.exp(-z))
    ignored = 0
    for level, stride in enumerate(yolov3.STRIDES):
      g = size // stride
      raw = outputs[level][0].reshape(g, g, 3, 5 + classes)
      for j, i, a in np.ndindex(g, g, 3):
        t = raw[j, i, a]
        cx, cy = (sigmoid(t[0]) + i) * stride, (sigmoid(t[1]) + j) * stride
        bw, bh = anchors[yolov3.ANCHOR_MASKS[level][a]] * np.exp(t[2:4])
        box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        overlap = max(_numpy_iou(box, np.array(b)) for b in (box_a, box_b))
        if overlap > 0.5 and (level, j, i, a) not in responsible:
          ignored += 1
    self.assertGreater(ignored, 0)
    total = yolo_loss.num_anchor_cells(size)
    self.assertEqual(total, 3 * (4 + 16 + 64))
    self.assertAllClose(terms[0], [expected_cls, (total - ignored) * LOG2,
                                   expected_loc])
    self.assertAllClose(terms[1], [0.0, total * LOG2, 0.0])  # No boxes.
    y["targets"] = yolo_loss.encode_targets(y["boxes"], y["classes"], size,
                                            classes)  # The pipeline's way.
    self.assertAllClose(yolo_loss.loss_terms(
        y, [tf.constant(o) for o in outputs], size, classes), terms)
    targets = yolo_loss.assign_targets(y["boxes"], y["classes"], 0, size,
                                       classes)
    self.assertEqual(float(tf.reduce_sum(targets["obj"])), 1.0)
    self.assertAllEqual(targets["classes"][0, 0, 1, 1], [0.0, 1.0])


class DataTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.annotations = fake_coco.write_coco(cls.root)

  def test_split_boxes_and_category_ids(self):
    data = coco.CocoData(self.root, val_images_for_training=2, max_boxes=4)
    self.assertAllEqual(data.category_ids, [3, 7, 18])
    train, size = data.training_set()
    self.assertEqual(size, 12 + 2)
    val_ids = sorted(i["id"] for i in self.annotations["val"]["images"])
    self.assertEqual(data.evaluation_image_ids(), val_ids[2:])
    self.assertEqual(data.evaluation_set()[1], 4)
    anns = self.annotations["train"]["annotations"] + self.annotations[
        "val"]["annotations"]
    seen = set()
    for path, y in train:
      image_id = int(y["image_id"])
      seen.add(image_id)
      mine = [a for a in anns if a["image_id"] == image_id]
      n = len(mine)
      self.assertTrue(os.path.isfile(path.numpy().decode()))
      self.assertAllEqual(data.category_ids[y["classes"][:n].numpy()],
                          [a["category_id"] for a in mine])
      self.assertAllClose(y["boxes"][:n], [
          [x, t, x + w, t + h] for x, t, w, h in (a["bbox"] for a in mine)])
      self.assertAllEqual(y["classes"][n:], -np.ones(4 - n))
    self.assertIn(val_ids[0], seen)
    self.assertNotIn(val_ids[-1], seen)

  def test_letterbox_keeps_boxes_on_their_pixels(self):
    data = coco.CocoData(self.root, max_boxes=4)
    one_box = [(p, y) for p, y in data.training_set()[0]
               if int(y["classes"][1]) < 0]
    self.assertNotEmpty(one_box)
    for k, (path, y) in enumerate(one_box):
      image = letterbox.load_image(path)
      outputs = [letterbox.random_letterbox(image, y["boxes"], y["classes"],
                                            96, [k, s]) for s in (0, 0, 1)]
      self.assertAllEqual(outputs[0][0], outputs[1][0])  # Stateless.
      self.assertNotAllClose(outputs[0][1], outputs[2][1])
      for canvas, boxes, labels in outputs + [letterbox.letterbox(
          image, y["boxes"], y["classes"], 96)]:
        self.assertEqual(canvas.shape, (96, 96, 3))
        if int(labels[0]) < 0:  # Jitter cut the box away.
          continue
        x1, y1, x2, y2 = boxes[0].numpy()
        centre = canvas[int((y1 + y2) / 2), int((x1 + x2) / 2)].numpy()
        colour = fake_coco.COLOURS[data.category_ids[int(labels[0])]]
        self.assertAllClose(centre * 255, colour, atol=40)
    # The evaluation letterbox inverts exactly.
    path, y = one_box[0]
    h, w = y["size"].numpy()
    _, boxes, _ = letterbox.letterbox(letterbox.load_image(path), y["boxes"],
                                      y["classes"], 96)
    self.assertAllClose(letterbox.to_original(boxes[:1], h, w, 96),
                        y["boxes"][:1], atol=1e-3)

  def test_perfect_detections_score_one_in_cocoeval(self):
    data = coco.CocoData(self.root, max_boxes=4)
    rows = []
    for path, y in data.evaluation_set()[0]:
      _, boxes, labels = letterbox.letterbox(letterbox.load_image(path),
                                             y["boxes"], y["classes"], 96)
      n = int(tf.reduce_sum(tf.cast(labels >= 0, tf.int32)))
      rows.append(detection_metrics.coco_records(
          boxes[None], tf.ones([1, 4]), labels[None], tf.constant([n]),
          {"image_id": y["image_id"][None], "size": y["size"][None]}, 96,
          data.category_ids))
    map_all, map_50 = detection_metrics.coco_map(
        data.coco("val"), np.concatenate(rows), data.evaluation_image_ids())
    self.assertAllClose([map_all, map_50], [1.0, 1.0])

  def test_missing_data_names_what_to_put_where(self):
    with self.assertRaisesRegex(errors.UserError, "no directory"):
      coco.CocoData(os.path.join(self.root, "nowhere"))
    partial = tempfile.mkdtemp()
    os.makedirs(os.path.join(partial, "annotations"))
    open(os.path.join(partial, "annotations", "instances_train2017.json"),
         "w").close()
    with self.assertRaises(errors.UserError) as ctx:
      coco.CocoData(partial)
    message = str(ctx.exception)
    for text in ("annotations/instances_val2017.json", "train2017/",
                 "val2017/", partial):
      self.assertIn(text, message)
    lacks = message.split(" lacks ")[1].split(". ")[0]
    self.assertNotIn("instances_train2017.json", lacks)  # That one is there.

  def test_backbone_weights_load_from_a_preset_directory(self):
    reference = yolov3.darknet53_features(image_size=64, **yolov3.DARKNET_TINY)
    preset = tempfile.mkdtemp()
    reference.save_weights(os.path.join(preset, "model.weights.h5"))
    loaded = yolov3.darknet53_features(image_size=64, weights=preset,
                                       **yolov3.DARKNET_TINY)
    fresh = yolov3.darknet53_features(image_size=64, **yolov3.DARKNET_TINY)
    self.assertFalse(loaded.trainable_weights)  # Frozen.
    x = tf.random.uniform([1, 64, 64, 3])
    expected = reference(x)
    self.assertEqual([f.shape[1] for f in expected], [8, 4, 2])  # Strides.
    for a, b in zip(expected, loaded(x)):
      self.assertAllClose(a, b)
    self.assertNotAllClose(expected[2], fresh(x)[2])  # Random otherwise.

  def test_missing_backbone_weights_is_a_user_error(self):
    with self.assertRaisesRegex(errors.UserError, "no such file"):
      yolov3.darknet53_features(image_size=64, weights="/nonexistent/dir",
                                **yolov3.DARKNET_TINY)

  def test_main_reports_missing_coco_without_traceback(self):
    out = subprocess.run(
        [sys.executable, "-m", "l2t_tf.main",
         "--gin_file=yolov3_coco.gin",
         f"--gin_bindings=DetectionTask.data_dir = '{tempfile.mkdtemp()}'"],
        capture_output=True, text=True, timeout=300)
    self.assertEqual(out.returncode, 2, out.stderr)
    self.assertIn("error: COCO data:", out.stderr)
    self.assertIn("instances_train2017.json", out.stderr)
    self.assertNotIn("Traceback", out.stderr)


class HypergradientTest(tf.test.TestCase):

  def test_hypergradient_through_yolo_loss_matches_finite_differences(self):
    # One step: the BatchNorm moving statistics are constants of the
    # hypergradient (design notes); after a second step they would depend
    # on phi through theta_1, which finite differences see (0.4 % here).
    keras.utils.set_random_seed(1)
    size, classes, n, b, m = 64, 2, 1, 2, 3
    shapes = [(8, 8, 4), (4, 4, 4), (2, 2, 4)]
    head = yolov3.yolov3_head(shapes, classes, neck_filters=(4, 4, 4),
                              dtype="float64")
    dln = yolo_dln.YoloDLN(size, classes, dtype="float64")
    rng = np.random.default_rng(0)

    def batch(*lead):
      x = tuple(tf.constant(rng.normal(size=lead + s)) for s in shapes)
      xy = rng.uniform(0, 40, lead + (m, 2))
      wh = rng.uniform(4, 24, lead + (m, 2))
      labels = rng.integers(0, classes, lead + (m,))
      labels[..., -1] = -1  # Padding.
      boxes = np.concatenate([xy, xy + wh], -1)
      targets = yolo_loss.encode_targets(
          tf.constant(boxes.reshape(-1, m, 4)), labels.reshape(-1, m), size,
          classes)  # As the task's data pipeline does.
      targets = tf.reshape(targets, lead + tuple(targets.shape[1:]))
      return x, {"boxes": tf.constant(boxes), "classes": tf.constant(labels),
                 "targets": targets}

    batches, validation = batch(n, b), batch(b)
    validation_error = lambda y, out: tf.reduce_sum(tf.reduce_mean(
        yolo_loss.loss_terms(y, out, size, classes), 0))

    unroll = gradcheck.compiled_unroll(head, dln, validation_error, batches,
                                       validation, 0.01, dln)

    analytic_grads = unroll().gradients
    analytic, finite_difference = gradcheck.directional_check(
        dln.trainable_variables, lambda: unroll().validation_error,
        analytic_grads, eps=1e-6)
    self.assertGreater(abs(analytic), 1e-4)
    self.assertAllClose(analytic, finite_difference, rtol=1e-5)
    self.assertTrue(all(np.all(g.numpy() != 0) for g in analytic_grads))


class EndToEndTest(tf.test.TestCase):

  def test_yolov3_coco_gin_trains_and_reports_coco_map(self):
    root = tempfile.mkdtemp()
    fake_coco.write_coco(os.path.join(root, "coco"))
    model_dir = os.path.join(root, "run")
    config.parse(["yolov3_coco.gin"], [
        f"train_eval.model_dir = '{model_dir}'",
        f"DetectionTask.data_dir = '{os.path.join(root, 'coco')}'",
        "DetectionTask.image_size = 64", "DetectionTask.max_boxes = 4",
        "DetectionTask.score_threshold = 1e-4",
        "darknet53_features.weights = None",
        "darknet53_features.stem_filters = 4",
        "darknet53_features.depths = (1, 1, 1, 1, 1)",
        "darknet53_features.filters = (8, 8, 16, 16, 16)",
        "yolov3_head.neck_filters = (8, 8, 8)",
        # At the paper's output scale (1e-3) two rounds move the DLN weights
        # by ~1e-7, below float32 resolution at w = 1.
        "TeacherUpdater.output_scale = 0.1",
        "Trainer.teacher_epochs = 1", "Trainer.rounds_per_epoch = 2",
        "Trainer.validation_batch_size = 2", "Trainer.train_comparison = False",
        "Trainer.eval_batch_size = 4", "Trainer.progress = False"])
    summarize = mock.Mock(wraps=cocoeval.COCOeval.summarize)
    with mock.patch.object(train_eval_lib.build_lib, "build",
                           trainer_testlib.SpyBuild.build), \
        mock.patch.object(cocoeval.COCOeval, "summarize",
                          lambda self: summarize(self)):
      results = train_eval_lib.train_eval()
    gin.clear_config()
    trainer = trainer_testlib.SpyBuild.instances[-1]
    with open(os.path.join(model_dir, "results.json")) as f:
      saved = json.load(f)
    self.assertEqual(results["rounds_done"], 2)
    self.assertEqual(results["skipped_updates"], 0)
    self.assertEqual(saved["primary_metric"], "test_map")
    self.assertGreater(summarize.call_count, 0)  # COCOeval scored it.
    evaluation = summarize.call_args[0][0]
    self.assertAllClose(saved["test_map"], max(evaluation.stats[0], 0.0))
    self.assertAllClose(saved["test_map50"], max(evaluation.stats[1], 0.0))
    self.assertGreater(saved["test_detections"], 0)
    self.assertGreater(saved["test_fps"], 0)
    moved = trainer.dln.trainable_variables[0].numpy() - (
        trainer_testlib.SpyBuild.initial_dln[0])
    self.assertEqual(moved.shape, (3,))
    self.assertTrue(np.all(moved != 0), moved)


if __name__ == "__main__":
  tf.test.main()
