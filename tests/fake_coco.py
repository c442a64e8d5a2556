"""A tiny synthetic MS-COCO in the official extracted layout, for tests.

`write_coco(root)` writes annotations/instances_{train,val}2017.json and
{train,val}2017/*.jpg: images of a few sizes, each with one to three filled
rectangles of a per-category colour on a dim noisy background, and
non-contiguous category ids (so label <-> id mapping matters).
"""
import json
import os

import numpy as np
from PIL import Image

CATEGORIES = ({"id": 3, "name": "car"}, {"id": 7, "name": "train"},
              {"id": 18, "name": "dog"})
COLOURS = {3: (230, 40, 40), 7: (40, 220, 60), 18: (50, 60, 240)}
SIZES = ((48, 64), (64, 48), (56, 56))


def _image(rng, height, width, num_boxes, first_id, image_id):
  pixels = rng.integers(0, 50, (height, width, 3)).astype(np.uint8)
  annotations = []
  for k in range(num_boxes):
    category = CATEGORIES[rng.integers(len(CATEGORIES))]["id"]
    w, h = rng.integers(12, width // 2), rng.integers(12, height // 2)
    x, y = rng.integers(0, width - w), rng.integers(0, height - h)
    pixels[y:y + h, x:x + w] = COLOURS[category]
    annotations.append({
        "id": first_id + k, "image_id": image_id, "category_id": category,
        "bbox": [float(x), float(y), float(w), float(h)],
        "area": float(w * h), "iscrowd": 0, "segmentation": []})
  return pixels, annotations


def write_split(root, split, num_images, seed, first_image_id):
  """Writes one split; returns its annotation dict."""
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.join(root, f"{split}2017"), exist_ok=True)
  images, annotations = [], []
  for i in range(num_images):
    image_id = first_image_id + i
    height, width = SIZES[i % len(SIZES)]
    pixels, anns = _image(rng, height, width, 1 + i % 3,
                          image_id * 10, image_id)
    name = f"{image_id:012d}.jpg"
    Image.fromarray(pixels).save(os.path.join(root, f"{split}2017", name),
                                 quality=95)
    images.append({"id": image_id, "file_name": name, "height": height,
                   "width": width})
    annotations += anns
  data = {"images": images, "annotations": annotations,
          "categories": list(CATEGORIES), "info": {}, "licenses": []}
  with open(os.path.join(root, "annotations",
                         f"instances_{split}2017.json"), "w") as f:
    json.dump(data, f)
  return data


def write_coco(root, num_train=12, num_val=6):
  """Writes the whole layout under `root`; returns {split: annotations}."""
  os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
  return {"train": write_split(root, "train", num_train, 0, 1),
          "val": write_split(root, "val", num_val, 1, 1000)}
