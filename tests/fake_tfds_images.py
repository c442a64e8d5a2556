"""Tiny stand-ins for the official CIFAR and ILSVRC 2012 archives.

Each writer produces a few generated images in exactly the member layout and
byte format of the official file, so tensorflow-datasets' own `cifar10`,
`cifar100` and `imagenet2012` builders prepare real TFRecords from them
through `l2t_tf.data.tfds_source` (the production path).

tfds verifies CIFAR archives against its registered sha256 checksum;
`registered_checksum` points that registry at the stand-in for the duration
of a test (the only thing not exercised as in production). ImageNet archives
are read from the manual directory without a checksum.
"""
import contextlib
import io
import os
import tarfile
from unittest import mock

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

CIFAR_URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
}
IMAGENET_SYNSETS = ("n01440764", "n01443537", "n01484850")  # Labels 0, 1, 2.


def _add(tar, name, data):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def _cifar_records(rng, count, label_bytes, num_classes):
  """count records: label byte(s) + 3072 bytes, channel-major image."""
  labels = rng.integers(0, num_classes, (count, label_bytes), dtype=np.uint8)
  images = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
  return np.concatenate([labels, images], axis=1).tobytes()


def write_cifar(manual_dir, name="cifar10", train_per_file=12, test=16,
                seed=0):
  """Writes <manual_dir>/cifar-10(0)-binary.tar.gz; returns its path."""
  rng = np.random.default_rng(seed)
  os.makedirs(manual_dir, exist_ok=True)
  path = os.path.join(manual_dir, os.path.basename(CIFAR_URLS[name]))
  with tarfile.open(path, "w:gz") as tar:
    if name == "cifar10":
      prefix = "cifar-10-batches-bin/"
      for i in range(1, 6):
        _add(tar, f"{prefix}data_batch_{i}.bin",
             _cifar_records(rng, train_per_file, 1, 10))
      _add(tar, f"{prefix}test_batch.bin", _cifar_records(rng, test, 1, 10))
      names = "\n".join(f"class{i}" for i in range(10)) + "\n"
      _add(tar, f"{prefix}batches.meta.txt", names.encode())
    else:
      prefix = "cifar-100-binary/"
      # Coarse byte then fine byte; both drawn below 20 so both are valid.
      _add(tar, f"{prefix}train.bin",
           _cifar_records(rng, 5 * train_per_file, 2, 20))
      _add(tar, f"{prefix}test.bin", _cifar_records(rng, test, 2, 20))
      for fname, n in (("coarse_label_names.txt", 20),
                       ("fine_label_names.txt", 100)):
        names = "\n".join(f"{fname[:4]}{i}" for i in range(n)) + "\n"
        _add(tar, prefix + fname, names.encode())
  return path


@contextlib.contextmanager
def registered_checksum(name, archive_path):
  """Makes tfds' checksum registry list the stand-in archive for `name`."""
  builder_cls = tfds.builder_cls(name)
  url_info = tfds.download.checksums.compute_url_info(archive_path)
  with mock.patch.object(builder_cls, "url_infos",
                         {CIFAR_URLS[name]: url_info}):
    yield


def _jpeg(rng, height, width):
  buf = io.BytesIO()
  Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                  ).save(buf, format="JPEG", quality=90)
  return buf.getvalue()


def write_imagenet(manual_dir, train_per_class=8, validation=12, seed=0):
  """Writes ILSVRC2012_img_train.tar (tar of per-synset tars) + _val.tar."""
  rng = np.random.default_rng(seed)
  os.makedirs(manual_dir, exist_ok=True)
  with tarfile.open(os.path.join(manual_dir, "ILSVRC2012_img_train.tar"),
                    "w") as train:
    for synset in IMAGENET_SYNSETS:
      inner = io.BytesIO()
      with tarfile.open(fileobj=inner, mode="w") as tar:
        for i in range(train_per_class):
          size = rng.integers(36, 64, 2)
          _add(tar, f"{synset}_{i}.JPEG", _jpeg(rng, *size))
      _add(train, f"{synset}.tar", inner.getvalue())
  with tarfile.open(os.path.join(manual_dir, "ILSVRC2012_img_val.tar"),
                    "w") as val:
    for i in range(1, validation + 1):
      size = rng.integers(36, 64, 2)
      _add(val, f"ILSVRC2012_val_{i:08d}.JPEG", _jpeg(rng, *size))
