"""MS-COCO detection read from the official extracted layout with pycocotools.

tfds' `coco/2017` only builds through its downloader, so this reads the
official files from a local directory and never downloads anything:

  <root>/annotations/instances_train<year>.json
  <root>/annotations/instances_val<year>.json
  <root>/train<year>/*.jpg
  <root>/val<year>/*.jpg

The paper (Sec. 4.2) trains on COCO train plus 35,000 val images and
evaluates on the remaining 5,000 ("minival"). COCO 2017 ships that split:
train2017 is the 2014 train + val35k and val2017 the 5,000 minival images,
so the default (`year="2017"`, `val_images_for_training=0`) is the paper's
split. With `year="2014"` set `val_images_for_training=35000` (the first
35,000 val images by id go to training) or give `minival_ids_file` (one
image id per line: those are evaluated, every other val image trains).

Examples are (path, y) with y = {"boxes": [max_boxes, 4] float32 (x1, y1,
x2, y2) in image pixels, "classes": [max_boxes] int32 contiguous labels,
both padded with -1, "image_id": int64, "size": [2] int32 (h, w)}. Crowd
boxes are left out (COCOeval ignores them too). `category_ids[label]` is the
COCO category id of a contiguous label.
"""
import contextlib
import io
import os

from absl import logging
from keras.utils import bounding_boxes
import numpy as np
import tensorflow as tf

from l2t_tf import errors

LAYOUT = """\
Extract the official COCO archives (annotations_trainval{year}.zip, \
train{year}.zip, val{year}.zip) into one directory so that it holds \
annotations/instances_train{year}.json, annotations/instances_val{year}.json, \
train{year}/*.jpg and val{year}/*.jpg, and set DetectionTask.data_dir to it; \
nothing is downloaded."""


def required_paths(root, year):
  """{description: path} of every file and directory the layout needs."""
  paths = {}
  for split in ("train", "val"):
    paths[f"annotations/instances_{split}{year}.json"] = os.path.join(
        root, "annotations", f"instances_{split}{year}.json")
    paths[f"{split}{year}/"] = os.path.join(root, f"{split}{year}")
  return paths


def check_layout(root, year):
  """Raises UserError naming what is missing under `root` and the layout."""
  root = os.path.abspath(os.path.expanduser(root))
  if not os.path.isdir(root):
    raise errors.UserError(f"COCO data: no directory {root}. "
                           + LAYOUT.format(year=year))
  missing = [name for name, path in required_paths(root, year).items()
             if not os.path.exists(path)]
  if missing:
    raise errors.UserError(f"COCO data: {root} lacks {', '.join(missing)}. "
                           + LAYOUT.format(year=year))
  return root


def _load_coco(path):
  # pylint: disable-next=g-import-not-at-top
  from pycocotools import coco as coco_lib
  try:
    with contextlib.redirect_stdout(io.StringIO()):  # Its progress prints.
      return coco_lib.COCO(path)
  except (ValueError, KeyError, OSError) as e:
    raise errors.UserError(f"COCO data: cannot read {path}: {e}") from e


class CocoData:
  """The COCO training and evaluation sets of the paper's split."""

  def __init__(self, root, year="2017", val_images_for_training=0,
               minival_ids_file=None, max_boxes=100, skip_empty=True):
    self.root, self.year = check_layout(root, str(year)), str(year)
    self.max_boxes, self.skip_empty = int(max_boxes), bool(skip_empty)
    self.val_images_for_training = int(val_images_for_training)
    self.minival_ids_file = minival_ids_file
    self._cocos = {}
    self.category_ids = np.array(sorted(self.coco("val").getCatIds()),
                                 np.int64)
    self._labels = {c: i for i, c in enumerate(self.category_ids)}
    self.num_classes = len(self.category_ids)

  def coco(self, split):
    """The pycocotools COCO object of 'train' or 'val' (loaded once)."""
    if split not in self._cocos:
      self._cocos[split] = _load_coco(
          required_paths(self.root, self.year)[
              f"annotations/instances_{split}{self.year}.json"])
    return self._cocos[split]

  def _val_split(self):
    """(val ids used for training, val ids evaluated), sorted."""
    ids = sorted(self.coco("val").getImgIds())
    if self.minival_ids_file:
      if not os.path.isfile(self.minival_ids_file):
        raise errors.UserError(f"CocoData.minival_ids_file: no such file "
                               f"{self.minival_ids_file!r}.")
      with open(self.minival_ids_file) as f:
        minival = {int(line) for line in f if line.strip()}
      return ([i for i in ids if i not in minival],
              [i for i in ids if i in minival])
    if not 0 <= self.val_images_for_training < len(ids):
      raise errors.UserError(
          f"val_images_for_training={self.val_images_for_training} must "
          f"leave some of the {len(ids)} val{self.year} images to evaluate.")
    k = self.val_images_for_training
    return ids[:k], ids[k:]

  def _records(self, split, image_ids, skip_empty):
    """Lists of paths, sizes, ids, COCO (x, y, w, h) boxes and classes."""
    coco = self.coco(split)
    records = {"path": [], "size": [], "image_id": [], "xywh": [],
               "classes": []}
    for image_id in image_ids:
      info = coco.imgs[image_id]
      anns = [a for a in coco.imgToAnns.get(image_id, [])
              if not a.get("iscrowd", 0) and a["bbox"][2] >= 1
              and a["bbox"][3] >= 1]
      if skip_empty and not anns:
        continue
      if len(anns) > self.max_boxes:
        logging.warning("COCO image %d has %d boxes; keeping max_boxes=%d.",
                        image_id, len(anns), self.max_boxes)
        anns = anns[:self.max_boxes]
      records["xywh"].append(
          np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4))
      records["classes"].append(np.array(
          [self._labels[a["category_id"]] for a in anns], np.int32))
      records["path"].append(os.path.join(self.root, f"{split}{self.year}",
                                          info["file_name"]))
      records["size"].append((info["height"], info["width"]))
      records["image_id"].append(image_id)
    return records

  def _dataset(self, parts, skip_empty):
    """Unbatched (path, y) from [(split, image_ids), ...]; and its size."""
    records = [self._records(split, ids, skip_empty) for split, ids in parts]
    merged = {k: sum((r[k] for r in records), []) for k in records[0]}
    n = len(merged["path"])
    xywh = np.concatenate(merged["xywh"] or [np.zeros([0, 4], np.float32)])
    boxes = tf.RaggedTensor.from_row_lengths(  # COCO's bbox is xywh.
        bounding_boxes.convert_format(xywh, source="xywh", target="xyxy"),
        [len(b) for b in merged["xywh"]])
    classes = tf.RaggedTensor.from_row_lengths(
        np.concatenate(merged["classes"] or [np.zeros([0], np.int32)]),
        [len(c) for c in merged["classes"]])
    data = tf.data.Dataset.from_tensor_slices((
        np.array(merged["path"], dtype=object),
        np.array(merged["size"], np.int32).reshape(-1, 2),
        np.array(merged["image_id"], np.int64), boxes, classes))
    return data.map(self._pad, num_parallel_calls=tf.data.AUTOTUNE), n

  def _pad(self, path, size, image_id, boxes, classes):
    dense = lambda t: t.to_tensor() if isinstance(t, tf.RaggedTensor) else t
    boxes, classes = dense(boxes), dense(classes)
    extra = self.max_boxes - tf.shape(classes)[0]
    boxes = tf.pad(boxes, [[0, extra], [0, 0]], constant_values=-1.0)
    classes = tf.pad(classes, [[0, extra]], constant_values=-1)
    m = self.max_boxes
    return path, {"boxes": tf.ensure_shape(boxes, [m, 4]),
                  "classes": tf.ensure_shape(classes, [m]),
                  "image_id": image_id, "size": size}

  def training_set(self):
    """(dataset, size): train<year> plus the val images used for training."""
    val_train, _ = self._val_split()
    parts = [("train", sorted(self.coco("train").getImgIds()))]
    if val_train:
      parts.append(("val", val_train))
    return self._dataset(parts, self.skip_empty)

  def evaluation_set(self):
    """(dataset, size): the held-out val images (every one, even empty)."""
    return self._dataset([("val", self._val_split()[1])], False)

  def evaluation_image_ids(self):
    return self._val_split()[1]
