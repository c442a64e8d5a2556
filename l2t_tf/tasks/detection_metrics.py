"""YOLOv3 decoding, NMS and COCO mAP with pycocotools' COCOeval.

Decoding (YOLOv3 paper, Sec. 2.1): box centre (sig(tx) + c) * stride, size
anchor * exp(t); score of class c = sig(objectness) * sig(class logit c).
Detections are the per-class non-maximum suppression of
`tf.image.combined_non_max_suppression` (IoU 0.45, score >= 0.005, at most
100 per image, as the Darknet COCO evaluation), mapped back from the
letterbox to image pixels and to COCO category ids, then scored by
`COCOeval` (bbox): mAP@[.5:.95] and mAP@.5. Frames per second count the whole
inference (backbone, head, decoding, NMS) per image, the first (tracing)
batch excluded.
"""
import contextlib
import io
import time

from absl import logging
from keras.utils import bounding_boxes
import numpy as np
import tensorflow as tf

from l2t_tf.data import letterbox
from l2t_tf.tasks import yolo_loss


def decode(outputs, image_size, num_classes):
  """Boxes [B, K, 4] (x1, y1, x2, y2) and class scores [B, K, C], K anchors."""
  pred = yolo_loss.flatten(outputs, num_classes)
  scores = tf.sigmoid(pred[..., 4:5]) * tf.sigmoid(pred[..., 5:])
  return yolo_loss.decode_boxes(pred, image_size), scores


def non_max_suppression(boxes, scores, max_detections=100, iou_threshold=0.45,
                        score_threshold=0.005):
  """Per-class NMS: (boxes [B, D, 4], scores [B, D], classes [B, D], n [B])."""
  result = tf.image.combined_non_max_suppression(
      tf.cast(boxes[:, :, None, :], tf.float32), tf.cast(scores, tf.float32),
      max_output_size_per_class=max_detections, max_total_size=max_detections,
      iou_threshold=iou_threshold, score_threshold=score_threshold,
      clip_boxes=False)
  return (result.nmsed_boxes, result.nmsed_scores,
          tf.cast(result.nmsed_classes, tf.int32), result.valid_detections)


def coco_records(boxes, scores, classes, count, y, image_size, category_ids):
  """COCO result rows [n, 7] (image_id, x, y, w, h, score, category_id)."""
  rows = []
  for i in range(int(tf.shape(count)[0])):
    n = int(count[i])
    if not n:
      continue
    height, width = int(y["size"][i][0]), int(y["size"][i][1])
    xyxy = letterbox.to_original(boxes[i, :n], height, width, image_size)
    xywh = bounding_boxes.convert_format(xyxy, source="xyxy", target="xywh",
                                         dtype=xyxy.dtype).numpy()
    keep = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)
    rows.append(np.column_stack([
        np.full(n, int(y["image_id"][i]), np.float64), xywh,
        scores[i, :n].numpy(), category_ids[classes[i, :n].numpy()]])[keep])
  return np.concatenate(rows) if rows else np.zeros([0, 7])


def coco_map(coco_gt, detections, image_ids):
  """(mAP@[.5:.95], mAP@.5) of detection rows on `image_ids` by COCOeval."""
  from pycocotools import cocoeval  # pylint: disable=g-import-not-at-top
  if not len(detections):  # loadRes cannot take an empty result list.
    return 0.0, 0.0
  output = io.StringIO()
  with contextlib.redirect_stdout(output):
    evaluation = cocoeval.COCOeval(coco_gt, coco_gt.loadRes(detections),
                                   "bbox")
    evaluation.params.imgIds = list(image_ids)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
  logging.info("COCOeval:\n%s", output.getvalue())
  stats = np.maximum(evaluation.stats[:2], 0.0)  # -1 = no ground truth.
  return float(stats[0]), float(stats[1])


class Evaluator:
  """Runs backbone + head on letterboxed batches and scores with COCOeval."""

  def __init__(self, backbone, image_size, num_classes, category_ids,
               coco_gt, image_ids, nms_options=None):
    self.backbone, self.image_size = backbone, int(image_size)
    self.num_classes = int(num_classes)
    self.category_ids = np.asarray(category_ids)
    self.coco_gt, self.image_ids = coco_gt, list(image_ids)
    self.nms_options = dict(nms_options or {})
    self._predictors = {}

  def predictor(self, head):
    """One tf.function per head: images -> NMS detections."""
    if id(head) not in self._predictors:
      @tf.function
      def predict(images):
        outputs = head(self.backbone(images, training=False), training=False)
        boxes, scores = decode(outputs, self.image_size, self.num_classes)
        return non_max_suppression(boxes, scores, **self.nms_options)
      self._predictors[id(head)] = (head, predict)
    return self._predictors[id(head)][1]

  def __call__(self, head, dataset):
    predict, rows = self.predictor(head), []
    seconds, timed_images = 0.0, 0
    batches = list(dataset)
    for index, (images, y) in enumerate(batches):
      start = time.perf_counter()
      result = predict(images)
      elapsed = time.perf_counter() - start
      if index:  # The first call may trace.
        seconds, timed_images = seconds + elapsed, timed_images + len(images)
      rows.append(coco_records(*result, y, self.image_size,
                               self.category_ids))
    if batches and not timed_images:  # One batch: time it again, traced.
      start = time.perf_counter()
      predict(batches[0][0])
      seconds = time.perf_counter() - start
      timed_images = len(batches[0][0])
    detections = np.concatenate(rows) if rows else np.zeros([0, 7])
    map_all, map_50 = coco_map(self.coco_gt, detections, self.image_ids)
    return {"test_map": map_all, "test_map50": map_50,
            "test_fps": timed_images / max(seconds, 1e-9),
            "test_detections": float(len(detections))}
