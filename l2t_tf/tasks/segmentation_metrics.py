"""Segmentation evaluation: confusion matrix, mIoU, sliding window, overlays.

mIoU as in the VOC benchmark (and PSPNet, Sec. 4): one C x C confusion matrix
accumulated over every pixel of the whole set (pixels labelled `ignore`
excluded), IoU_c = TP_c / (TP_c + FP_c + FN_c), mIoU the mean over classes.
A class that is neither in the ground truth nor predicted anywhere has no
IoU and is left out of the mean (never the case on VOC val).

Full-resolution prediction with a fixed-size model uses a sliding window of
the crop size (PSPNet's evaluation): windows overlap by 1/3, images smaller
than a window are padded, window softmax scores are averaged per pixel.
"""
import math

import numpy as np
import tensorflow as tf


def confusion_matrix(labels, predictions, num_classes, ignore_label=255):
  """int64 [C, C], rows = true class, columns = predicted class.

  labels, predictions: integer arrays of the same shape; pixels whose label
  is `ignore_label` are skipped.
  """
  labels = np.asarray(labels).ravel().astype(np.int64)
  predictions = np.asarray(predictions).ravel().astype(np.int64)
  valid = labels != ignore_label
  index = labels[valid] * num_classes + predictions[valid]
  return np.bincount(index, minlength=num_classes**2).reshape(
      num_classes, num_classes)


def iou_from_confusion(confusion):
  """Per-class IoU [C] (NaN where the class never occurs nor is predicted)."""
  confusion = np.asarray(confusion, np.float64)
  true_positive = np.diag(confusion)
  union = confusion.sum(0) + confusion.sum(1) - true_positive
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(union > 0, true_positive / union, np.nan)


def segmentation_metrics(confusion, class_names, prefix="test_"):
  """Dict: <prefix>miou first, pixel accuracy, <prefix>iou/<class> (defined)."""
  iou = iou_from_confusion(confusion)
  defined = ~np.isnan(iou)
  total = float(np.sum(confusion))
  result = {
      f"{prefix}miou": float(np.mean(iou[defined])) if defined.any() else 0.0,
      f"{prefix}pixel_accuracy":
          float(np.trace(confusion)) / total if total else 0.0,
  }
  for name, value, ok in zip(class_names, iou, defined):
    if ok:
      result[f"{prefix}iou/{name}"] = float(value)
  return result


def window_starts(length, window, stride):
  """Start offsets covering [0, length) with windows of `window` pixels."""
  if length <= window:
    return [0]
  starts = list(range(0, length - window, stride))
  return starts + [length - window]


class SlidingWindow:
  """Full-resolution class map of one image with a fixed-input-size student.

  `student` maps [B, crop, crop, 3] to [main_logits, aux_logits]; only the
  main head is used. Call with x float [H, W, 3]; returns int [H, W].
  """

  def __init__(self, student, crop_size, stride_ratio=2 / 3, batch_size=4):
    self.crop = int(crop_size)
    self.stride = max(1, int(math.ceil(self.crop * stride_ratio)))
    self.batch_size = batch_size
    spec = tf.TensorSpec([None, self.crop, self.crop, 3], tf.float32)
    self._scores = tf.function(
        lambda x: tf.nn.softmax(student(x, training=False)[0], axis=-1),
        input_signature=[spec])

  def __call__(self, image):
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    padded = np.zeros((max(height, self.crop), max(width, self.crop), 3),
                      np.float32)  # 0 = the mean after normalisation.
    padded[:height, :width] = image
    boxes = [(top, left)
             for top in window_starts(padded.shape[0], self.crop, self.stride)
             for left in window_starts(padded.shape[1], self.crop, self.stride)]
    scores, counts = None, np.zeros(padded.shape[:2] + (1,), np.float32)
    for i in range(0, len(boxes), self.batch_size):
      chunk = boxes[i:i + self.batch_size]
      windows = np.stack([padded[t:t + self.crop, l:l + self.crop]
                          for t, l in chunk])
      out = self._scores(tf.constant(windows)).numpy()
      if scores is None:
        scores = np.zeros(padded.shape[:2] + out.shape[-1:], np.float32)
      for (t, l), window_scores in zip(chunk, out):
        scores[t:t + self.crop, l:l + self.crop] += window_scores
        counts[t:t + self.crop, l:l + self.crop] += 1.0
    return np.argmax(scores[:height, :width] / counts[:height, :width], -1)


def voc_colormap(num=256):
  """The PASCAL VOC palette [num, 3] uint8 (bit-interleaved class index)."""
  colors = np.zeros((num, 3), np.uint8)
  for i in range(num):
    c, r, g, b = i, 0, 0, 0
    for j in range(8):
      r |= ((c >> 0) & 1) << (7 - j)
      g |= ((c >> 1) & 1) << (7 - j)
      b |= ((c >> 2) & 1) << (7 - j)
      c >>= 3
    colors[i] = (r, g, b)
  return colors


def overlay(image, labels, predictions, mean, std):
  """[H, 3W, 3] float in [0, 1]: image | ground truth | prediction."""
  image = np.clip(np.asarray(image) * std + mean, 0.0, 1.0)
  colors = voc_colormap().astype(np.float32) / 255.0
  truth = colors[np.asarray(labels).astype(np.int64)]
  predicted = colors[np.asarray(predictions).astype(np.int64)]
  return np.concatenate([image, truth, predicted], axis=1).astype(np.float32)
