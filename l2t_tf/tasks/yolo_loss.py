"""The YOLOv3 loss as three terms [l_cls, l_conf, l_loc] (paper Sec. 4.2).

L2T-DLN weighs the three terms of the YOLOv3 loss with its detection DLN, so
they are returned separately, per image: `loss_terms(y, outputs)` -> [B, 3].
The form follows the YOLOv3 paper (Redmon & Farhadi 2018, Sec. 2.1-2.3) and
the gradients of its Darknet reference (`yolo_layer.c`):

* Assignment. Each ground-truth box goes to the one anchor, among all nine,
  whose (w, h) has the highest IoU with its (w, h) (both centred); that fixes
  the scale; the cell is the one holding the box centre.
* l_loc = sum over responsible anchors of
    0.5 (2 - w h / S^2) [(sig(tx) - gx)^2 + (sig(ty) - gy)^2
                         + (tw - log(w / aw))^2 + (th - log(h / ah))^2],
  gx, gy the centre's offset inside its cell, (w, h) the box and (aw, ah) the
  anchor in pixels, S the input size (small boxes weigh more).
* l_conf = sum of BCE(sig(to), 1) over responsible anchors + BCE(sig(to), 0)
  over the other anchors, except those whose decoded box has IoU > 0.5 with
  some ground-truth box (the ignore mask; the IoU is not differentiated).
* l_cls = sum over responsible anchors and the C classes of
  BCE(sig(class logit), one-hot) (independent logistic classifiers).

All sums run over the cells and anchors of the three scales of one image;
the DLN (or the plain sum of the baseline) averages the images of a batch.
Duplicate targets: two boxes assigned to the same cell and anchor keep only
the later one (annotation order, as Darknet's overwriting), so no anchor is
counted twice; the earlier box still counts in the ignore mask.

Ground truth y: {"boxes": [B, M, 4] (x1, y1, x2, y2) in input pixels,
"classes": [B, M] int}, both padded with -1 (class < 0 = no box), and
optionally "targets" [B, K, 7], the assignment above made dense over the K
anchors of all scales (`encode_targets`). The task's data pipeline computes
them once per example, so the unrolled graph only holds the loss itself,
computed once on the predictions of all scales concatenated.
"""
from keras.utils import bounding_boxes
import numpy as np
import tensorflow as tf

from l2t_tf.students import yolov3

IGNORE_IOU = 0.5
TERMS = ("l_cls", "l_conf", "l_loc")


def box_iou(a, b):
  """Pairwise IoU of (x1, y1, x2, y2) boxes, Keras' `compute_iou`.

  a [B, K, 4], b [B, M, 4] (or unbatched [K, 4], [M, 4]) -> [B, K, M] in
  a's dtype; 0 for empty boxes (Keras divides by union + 1e-7, so 0 / 0 is
  0). Keras computes in float32 whatever the input dtype: for float64 boxes
  the IoU is float32-exact (~1e-7), which the ignore mask's threshold (the
  IoU is not differentiated) tolerates.
  """
  return tf.cast(bounding_boxes.compute_iou(a, b, "xyxy"), a.dtype)


def anchors_px(image_size, dtype):
  """[9, 2] anchor (w, h) in pixels of an input of `image_size`."""
  return tf.constant(yolov3.relative_anchors() * image_size, dtype)


def layout(image_size):
  """Per-anchor constants of the flattened predictions, all scales.

  Returns numpy (cells [K, 2] (i, j), strides [K, 1], anchors [K, 2] px),
  K = sum over STRIDES of 3 (S / s)^2, in the order of `flatten`: scale,
  row j, column i, anchor.
  """
  cells, strides, anchors = [], [], []
  sizes = yolov3.relative_anchors() * image_size
  for level, stride in enumerate(yolov3.STRIDES):
    g = image_size // stride
    j, i, a = np.meshgrid(np.arange(g), np.arange(g), np.arange(3),
                          indexing="ij")
    cells.append(np.stack([i.ravel(), j.ravel()], -1))
    strides.append(np.full([3 * g * g, 1], stride))
    anchors.append(sizes[np.array(yolov3.ANCHOR_MASKS[level])[a.ravel()]])
  return tuple(np.concatenate(v).astype(np.float64)
               for v in (cells, strides, anchors))


def flatten(outputs, num_classes):
  """[P32, P16, P8] -> predictions [B, K, 5 + C] in `layout` order."""
  return tf.concat([tf.reshape(o, [tf.shape(o)[0], -1, 5 + num_classes])
                    for o in outputs], 1)


def decode_boxes(pred, image_size):
  """Boxes [B, K, 4] (x1, y1, x2, y2) in input pixels from [B, K, 5 + C]."""
  cells, strides, anchors = (tf.constant(v, pred.dtype)
                             for v in layout(image_size))
  centre = (tf.sigmoid(pred[..., :2]) + cells) * strides
  wh = tf.exp(tf.minimum(pred[..., 2:4], 10.0)) * anchors
  return bounding_boxes.convert_format(tf.concat([centre, wh], -1),
                                       source="center_xywh", target="xyxy",
                                       dtype=pred.dtype)


def _best_anchor(wh, image_size):
  """Index [B, M] of the anchor (of 9) best matching box sizes wh [B, M, 2]."""
  anchors = anchors_px(image_size, wh.dtype)
  inter = tf.reduce_prod(tf.minimum(wh[..., None, :], anchors), -1)
  union = (tf.reduce_prod(wh, -1)[..., None] + tf.reduce_prod(anchors, -1) -
           inter)
  return tf.argmax(tf.math.divide_no_nan(inter, union), -1, tf.int32)


def _keep_last(key, responsible):
  """[B, M] True for responsible boxes no later box shares `key` with."""
  m = tf.shape(key)[1]
  same = tf.equal(key[:, :, None], key[:, None, :])
  same &= responsible[:, :, None] & responsible[:, None, :]
  later = tf.range(m)[None, :] > tf.range(m)[:, None]  # [m, n]: n after m.
  return responsible & ~tf.reduce_any(same & later[None], -1)


def assign_targets(boxes, classes, level, image_size, num_classes):
  """Dense targets of scale `level` from padded ground truth.

  Args:
    boxes: [B, M, 4] float (x1, y1, x2, y2) input pixels, -1 padded.
    classes: [B, M] int, -1 padded.
    level: index into `yolov3.STRIDES`.
    image_size: S.
    num_classes: C.
  Returns:
    dict of obj [B, g, g, 3] (0/1), box [B, g, g, 3, 4] (gx, gy, log w/aw,
    log h/ah), scale [B, g, g, 3] and classes [B, g, g, 3, C] (one-hot),
    g = S / stride; zero where no box is assigned.
  """
  stride, mask = yolov3.STRIDES[level], yolov3.ANCHOR_MASKS[level]
  grid = image_size // stride
  wh = boxes[..., 2:] - boxes[..., :2]
  valid = (classes >= 0) & tf.reduce_all(wh > 0, -1)
  wh = tf.where(valid[..., None], wh, tf.ones_like(wh))
  best = _best_anchor(wh, image_size)
  responsible = valid & (best >= mask[0]) & (best <= mask[-1])
  local = tf.clip_by_value(best - mask[0], 0, 2)
  centre = (boxes[..., :2] + boxes[..., 2:]) / 2 / stride
  cell = tf.clip_by_value(tf.cast(tf.floor(centre), tf.int32), 0, grid - 1)
  keep = _keep_last((cell[..., 1] * grid + cell[..., 0]) * 3 + local,
                    responsible)
  batch = tf.broadcast_to(tf.range(tf.shape(boxes)[0])[:, None],
                          tf.shape(local))
  index = tf.stack([batch, cell[..., 1], cell[..., 0], local], -1)
  weight = tf.cast(keep, boxes.dtype)
  anchor = tf.gather(anchors_px(image_size, boxes.dtype), best)
  box = tf.concat([centre - tf.cast(cell, boxes.dtype),
                   tf.math.log(wh / anchor)], -1)
  scale = 2.0 - wh[..., 0] * wh[..., 1] / float(image_size) ** 2
  onehot = tf.one_hot(tf.maximum(classes, 0), num_classes, dtype=boxes.dtype)
  shape = [tf.shape(boxes)[0], grid, grid, 3]
  scatter = lambda v: _scatter(index, v, weight, shape)
  return {"obj": scatter(weight), "box": scatter(box),
          "scale": scatter(scale), "classes": scatter(onehot)}


def _scatter(index, values, weight, shape):
  """Dense [B, g, g, 3, ...] from per-box values [B, M, ...] times weight.

  `scatter_nd` sums at repeated indices: dropped boxes (weight 0) add zeros,
  and the kept ones have unique indices, so the result is deterministic.
  """
  weight = tf.reshape(weight, tf.concat(
      [tf.shape(weight), tf.ones([tf.rank(values) - 2], tf.int32)], 0))
  return tf.scatter_nd(index, values * weight, tf.concat(
      [tf.stack(shape), tf.shape(values)[2:]], 0))


def encode_targets(boxes, classes, image_size, num_classes):
  """Targets [B, K, 7] = (obj, gx, gy, log w/aw, log h/ah, scale, class).

  Dense over the K anchors of all scales (`layout` order), from the padded
  ground truth ([B, M, 4], [B, M]); class is -1 where obj = 0. Cheap to
  store (7 numbers per anchor), so the data pipeline computes it once per
  example and the unrolled loss only reads it.
  """
  parts = []
  for level in range(len(yolov3.STRIDES)):
    t = assign_targets(boxes, classes, level, image_size, num_classes)
    label = tf.where(t["obj"] > 0, tf.cast(tf.argmax(t["classes"], -1),
                                            boxes.dtype), -1.0)
    dense = tf.concat([t["obj"][..., None], t["box"], t["scale"][..., None],
                       label[..., None]], -1)
    parts.append(tf.reshape(dense, [tf.shape(boxes)[0], -1, 7]))
  return tf.concat(parts, 1)


def _ignore_mask(pred, boxes, classes, image_size):
  """[B, K] 1.0 where the decoded box overlaps a truth by > 0.5."""
  decoded = tf.stop_gradient(decode_boxes(pred, image_size))
  iou = box_iou(decoded, boxes) * tf.cast(classes >= 0, pred.dtype)[:, None]
  best = tf.reduce_max(tf.concat([iou, tf.zeros_like(iou[..., :1])], -1), -1)
  return tf.cast(best > IGNORE_IOU, pred.dtype)


def loss_terms(y, outputs, image_size, num_classes):
  """Per-image terms [B, 3] = (l_cls, l_conf, l_loc) summed over scales.

  Args:
    y: {"boxes": [B, M, 4], "classes": [B, M]} padded with -1, and
      optionally "targets" [B, K, 7] from `encode_targets` (else computed).
    outputs: [P32, P16, P8] raw head outputs, [B, S/s, S/s, 3 * (5 + C)].
    image_size: S.
    num_classes: C.
  """
  pred = flatten(outputs, num_classes)
  boxes = tf.cast(y["boxes"], pred.dtype)
  classes = tf.cast(y["classes"], tf.int32)
  targets = y.get("targets")
  if targets is None:
    targets = encode_targets(boxes, classes, image_size, num_classes)
  targets = tf.cast(targets, pred.dtype)
  obj, box, scale = targets[..., 0], targets[..., 1:5], targets[..., 5]
  onehot = tf.one_hot(tf.cast(targets[..., 6], tf.int32), num_classes,
                      dtype=pred.dtype)  # Zeros where the class is -1.
  bce = tf.nn.sigmoid_cross_entropy_with_logits
  noobj = (1.0 - obj) * (1.0 - _ignore_mask(pred, boxes, classes, image_size))
  conf = (obj * bce(labels=tf.ones_like(obj), logits=pred[..., 4]) +
          noobj * bce(labels=tf.zeros_like(obj), logits=pred[..., 4]))
  cls = obj * tf.reduce_sum(bce(labels=onehot, logits=pred[..., 5:]), -1)
  error = tf.concat([tf.sigmoid(pred[..., :2]), pred[..., 2:4]], -1) - box
  loc = obj * 0.5 * scale * tf.reduce_sum(tf.square(error), -1)
  return tf.stack([tf.reduce_sum(cls, 1), tf.reduce_sum(conf, 1),
                   tf.reduce_sum(loc, 1)], -1)


def num_anchor_cells(image_size):
  """Anchors over all scales (e.g. 10647 at 416)."""
  return int(np.sum([3 * (image_size // s) ** 2 for s in yolov3.STRIDES]))
