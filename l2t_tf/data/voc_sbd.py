"""PASCAL VOC 2012 + SBD semantic segmentation, read from the original archives.

Paper Sec. 4.3 (PSPNet on VOC): the usual augmented training set of Zhao et
al. (2017) and DeepLab, i.e. VOC 2012 `train` plus SBD (Hariharan et al. 2011)
`train` and `val`, minus VOC 2012 `val` (10,582 images), and VOC 2012 `val`
(1,449 images) for evaluation.

tensorflow-datasets has no builder for either, so `VocSbd` reads the two
official archives from a manual directory and never downloads anything:

  VOCtrainval_11-May-2012.tar   VOCdevkit/VOC2012/{JPEGImages/*.jpg,
                                SegmentationClass/*.png (palette index =
                                class),
                                ImageSets/Segmentation/{train,val}.txt}
  benchmark.tgz                 benchmark_RELEASE/dataset/{img/*.jpg,
                                cls/*.mat (GTcls.Segmentation), train.txt, val.txt}

Where an image has both masks, the VOC one wins (it marks object borders as
255 = ignore). Features: `image` uint8 [H, W, 3], `segmentation_mask` uint8
[H, W, 1] in {0..20, 255}, `file_id` (e.g. "2007_000032").
"""
import os
import shutil

import numpy as np
import tensorflow_datasets as tfds

from l2t_tf import errors

VOC_ARCHIVE = "VOCtrainval_11-May-2012.tar"
SBD_ARCHIVE = "benchmark.tgz"
VOC_ROOT = os.path.join("VOCdevkit", "VOC2012")
SBD_ROOT = os.path.join("benchmark_RELEASE", "dataset")
NUM_CLASSES = 21
IGNORE_LABEL = 255
CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus",
    "car", "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike",
    "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")

_INSTRUCTIONS = f"""\
Put the two official archives, unchanged, in the manual directory:
  {VOC_ARCHIVE}  (PASCAL VOC 2012 trainval, 2.0 GB:
      http://host.robots.ox.ac.uk/pascal/VOC/voc2012/{VOC_ARCHIVE})
  {SBD_ARCHIVE}  (SBD, 1.4 GB: http://www.eecs.berkeley.edu/Research/Projects/\
CS/vision/grouping/semantic_contours/{SBD_ARCHIVE})
"""

# Paths inside the extracted archives that the builder needs.
_VOC_REQUIRED = ("JPEGImages", "SegmentationClass",
                 os.path.join("ImageSets", "Segmentation", "train.txt"),
                 os.path.join("ImageSets", "Segmentation", "val.txt"))
_SBD_REQUIRED = ("img", "cls", "train.txt", "val.txt")


def missing_archives(manual_dir):
  """Names of the archives absent (or empty) in `manual_dir`."""
  missing = []
  for name in (VOC_ARCHIVE, SBD_ARCHIVE):
    path = os.path.join(manual_dir, name)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
      missing.append(name)
  return missing


def check_archives(manual_dir):
  """Raises UserError naming the missing archives and `manual_dir`."""
  missing = missing_archives(manual_dir)
  if missing:
    raise errors.UserError(
        f"VOC 2012 + SBD data: missing {' and '.join(missing)} in "
        f"{os.path.abspath(manual_dir)} (nothing is downloaded). "
        + " ".join(_INSTRUCTIONS.split()))


def _check_extracted(extracted, root, required, archive, manual_dir):
  """UserError if `root` lacks `required`; drops the stale extraction."""
  missing = [p for p in required if not os.path.exists(os.path.join(root, p))]
  if missing:
    # tfds reuses an extraction by file name: remove it so that the next run
    # extracts the replaced archive.
    shutil.rmtree(extracted, ignore_errors=True)
    raise errors.UserError(
        f"VOC 2012 + SBD data: {archive} in {os.path.abspath(manual_dir)} is "
        f"incomplete (no {', '.join(missing)} under {root}); download it "
        f"again into that directory.")


def _read_ids(path):
  with open(path) as f:
    return [line.strip() for line in f if line.strip()]


def read_voc_mask(path):
  """Class mask [H, W] uint8 of a VOC palette PNG (palette index = class)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    if image.mode != "P":
      raise errors.UserError(f"{path}: expected a palette PNG, got mode "
                             f"{image.mode}.")
    return np.asarray(image, dtype=np.uint8)


def read_sbd_mask(path):
  """Class mask [H, W] uint8 of an SBD `cls/*.mat` (GTcls.Segmentation)."""
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  gt = scipy_io.loadmat(path)["GTcls"]
  return np.asarray(gt["Segmentation"][0][0], dtype=np.uint8)


def augmented_ids(voc_train, voc_val, sbd_train, sbd_val):
  """Sorted ids of VOC train + SBD train + SBD val - VOC val (10,582)."""
  return sorted((set(voc_train) | set(sbd_train) | set(sbd_val)) -
                set(voc_val))


class VocSbd(tfds.core.GeneratorBasedBuilder):
  """VOC 2012 segmentation with the SBD-augmented training set."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Augmented train (VOC+SBD) and VOC val."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "segmentation_mask": tfds.features.Image(
                shape=(None, None, 1), use_colormap=False),
            "file_id": tfds.features.Text(),
        }),
        supervised_keys=("image", "segmentation_mask"),
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/")

  def _split_generators(self, dl_manager):
    manual_dir = str(dl_manager.manual_dir)
    check_archives(manual_dir)
    roots = {}
    for key, archive, sub, required in (
        ("voc", VOC_ARCHIVE, VOC_ROOT, _VOC_REQUIRED),
        ("sbd", SBD_ARCHIVE, SBD_ROOT, _SBD_REQUIRED)):
      try:
        extracted = dl_manager.extract(os.path.join(manual_dir, archive))
      except Exception as e:  # pylint: disable=broad-except
        raise errors.UserError(
            f"VOC 2012 + SBD data: cannot extract {archive} in "
            f"{os.path.abspath(manual_dir)} ({type(e).__name__}: "
            f"{' '.join(str(e).split())}); it is "
            f"probably truncated: download it again.") from e
      roots[key] = os.path.join(str(extracted), sub)
      _check_extracted(str(extracted), roots[key], required, archive,
                       manual_dir)
    return {"train": self._generate_examples(roots, "train"),
            "validation": self._generate_examples(roots, "validation")}

  def _generate_examples(self, roots, split):
    voc, sbd = roots["voc"], roots["sbd"]
    sets = os.path.join(voc, "ImageSets", "Segmentation")
    voc_train = _read_ids(os.path.join(sets, "train.txt"))
    voc_val = _read_ids(os.path.join(sets, "val.txt"))
    if split == "validation":
      ids = voc_val
    else:
      ids = augmented_ids(voc_train, voc_val,
                          _read_ids(os.path.join(sbd, "train.txt")),
                          _read_ids(os.path.join(sbd, "val.txt")))
    voc_masks = set(voc_train) | set(voc_val)
    for file_id in ids:
      if file_id in voc_masks:
        image = os.path.join(voc, "JPEGImages", file_id + ".jpg")
        mask = read_voc_mask(os.path.join(voc, "SegmentationClass",
                                          file_id + ".png"))
      else:
        image = os.path.join(sbd, "img", file_id + ".jpg")
        mask = read_sbd_mask(os.path.join(sbd, "cls", file_id + ".mat"))
      yield file_id, {"image": image, "segmentation_mask": mask[..., None],
                      "file_id": file_id}


def default_data_dir():
  """tfds's data directory: $TFDS_DATA_DIR or ~/tensorflow_datasets."""
  return os.environ.get("TFDS_DATA_DIR", os.path.expanduser(
      os.path.join("~", "tensorflow_datasets")))


def default_manual_dir(data_dir=None):
  """Where the archives are looked for: <data_dir>/downloads/manual."""
  return os.path.join(data_dir or default_data_dir(), "downloads", "manual")


def is_prepared(data_dir=None):
  """True if the tfds data set was already built in `data_dir`."""
  return os.path.isfile(os.path.join(
      data_dir or default_data_dir(), VocSbd.name, str(VocSbd.VERSION),
      "dataset_info.json"))


def builder(data_dir=None, manual_dir=None):
  """A prepared `VocSbd` builder; prepares it from the archives if needed.

  Raises UserError (no download attempt) if the data is not prepared yet and
  an archive is missing or incomplete; once prepared, the archives are no
  longer needed.
  """
  data_dir = data_dir or default_data_dir()
  manual_dir = manual_dir or default_manual_dir(data_dir)
  if not is_prepared(data_dir):
    check_archives(manual_dir)  # Before tfds looks at anything.
  voc_sbd = VocSbd(data_dir=data_dir)
  if not voc_sbd.is_prepared():
    voc_sbd.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=manual_dir, download_mode=
        tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
  return voc_sbd


def load(split, data_dir=None, manual_dir=None):
  """(dataset of {'image', 'segmentation_mask', 'file_id'}, size) of `split`."""
  voc_sbd = builder(data_dir, manual_dir)
  size = voc_sbd.info.splits[split].num_examples
  return voc_sbd.as_dataset(split=split, shuffle_files=False), int(size)
