"""Writes a tiny fake VOCtrainval_11-May-2012.tar + benchmark.tgz pair.

Same member layout and file formats as the official archives (JPEG images,
palette PNG masks with 255 borders, SBD `cls/*.mat` with GTcls.Segmentation),
with a few small generated images whose masks are filled shapes.
"""
import io
import os
import tarfile

import numpy as np
from PIL import Image
from scipy import io as scipy_io


def _shape_example(rng, height, width):
  """(image uint8 [H, W, 3], mask uint8 [H, W]) with one or two shapes."""
  mask = np.zeros((height, width), np.uint8)
  yy, xx = np.mgrid[:height, :width]
  for _ in range(rng.integers(1, 3)):
    cls = int(rng.integers(1, 21))
    cy, cx = rng.integers(4, height - 4), rng.integers(4, width - 4)
    r = int(rng.integers(3, min(height, width) // 3))
    if rng.random() < 0.5:  # A disc or a square.
      mask[(yy - cy)**2 + (xx - cx)**2 < r * r] = cls
    else:
      mask[(abs(yy - cy) < r) & (abs(xx - cx) < r)] = cls
  palette = rng.integers(0, 256, (21, 3)).astype(np.uint8)
  image = palette[mask] // 2 + rng.integers(0, 128, (height, width, 3),
                                            dtype=np.uint8)
  return image.astype(np.uint8), mask


def _bytes_jpeg(image):
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="JPEG", quality=95)
  return buf.getvalue()


def _bytes_palette_png(mask):
  image = Image.fromarray(mask, mode="P")
  image.putpalette(list(np.random.default_rng(0).integers(0, 256, 768)))
  buf = io.BytesIO()
  image.save(buf, format="PNG")
  return buf.getvalue()


def _bytes_mat(mask):
  buf = io.BytesIO()
  scipy_io.savemat(buf, {"GTcls": {"Segmentation": mask,
                                   "CategoriesPresent": np.unique(mask)}})
  return buf.getvalue()


def _add(tar, name, data):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def _ids(prefix, n):
  return [f"{prefix}_{i:06d}" for i in range(n)]


def write_archives(directory, voc_train=4, voc_val=3, sbd_only=6, seed=0,
                   size=(40, 56)):
  """Writes both archives into `directory`; returns the expected id lists.

  SBD train/val hold `sbd_only` new ids plus one VOC train id and one VOC val
  id (overlaps as in the real data), so the augmented training set has
  voc_train + sbd_only images and the validation set voc_val images.
  """
  rng = np.random.default_rng(seed)
  train, val, extra = _ids("2007", voc_train), _ids("2008", voc_val), _ids(
      "2009", sbd_only)
  examples = {i: _shape_example(rng, size[0] + int(rng.integers(0, 9)),
                                size[1] - int(rng.integers(0, 9)))
              for i in train + val + extra}
  os.makedirs(directory, exist_ok=True)
  voc = "VOCdevkit/VOC2012/"
  with tarfile.open(os.path.join(directory, "VOCtrainval_11-May-2012.tar"),
                    "w") as tar:
    for i in train + val:
      image, mask = examples[i]
      border = mask.copy()  # VOC marks object borders as 255.
      edge = np.zeros_like(mask, bool)
      edge[1:] |= mask[1:] != mask[:-1]
      edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
      border[edge] = 255
      _add(tar, f"{voc}JPEGImages/{i}.jpg", _bytes_jpeg(image))
      _add(tar, f"{voc}SegmentationClass/{i}.png", _bytes_palette_png(border))
    for name, ids in (("train", train), ("val", val)):
      _add(tar, f"{voc}ImageSets/Segmentation/{name}.txt",
           ("\n".join(ids) + "\n").encode())
  sbd = "benchmark_RELEASE/dataset/"
  sbd_train = extra[:len(extra) // 2] + train[:1]
  sbd_val = extra[len(extra) // 2:] + val[:1]
  with tarfile.open(os.path.join(directory, "benchmark.tgz"), "w:gz") as tar:
    for i in sbd_train + sbd_val:
      image, mask = examples[i]
      _add(tar, f"{sbd}img/{i}.jpg", _bytes_jpeg(image))
      _add(tar, f"{sbd}cls/{i}.mat", _bytes_mat(mask))
    for name, ids in (("train", sbd_train), ("val", sbd_val)):
      _add(tar, f"{sbd}{name}.txt", ("\n".join(ids) + "\n").encode())
  return {"train": sorted(train + extra), "validation": val,
          "masks": {i: examples[i][1] for i in examples}}
