"""tensorflow-datasets builders that never download.

`prepared_builder` returns a `tfds` builder whose data is ready in
`data_dir`. If the data is not prepared yet but the original archives are in
`manual_dir`, it prepares them there (tfds reads an archive from `manual_dir`
whose file name matches the registered download, checksum verified). If
neither is there, it raises `UserError` at once naming the dataset, both
directories and the exact files to put in place: a download attempt without
network hangs for minutes (design notes Sec. 3), so none is ever made.
"""
import os

from absl import logging
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

from l2t_tf import errors

DEFAULT_DATA_DIR = os.environ.get("TFDS_DATA_DIR",
                                  os.path.join("~", "tensorflow_datasets"))


def default_manual_dir(data_dir):
  """tfds' own default: <data_dir>/downloads/manual."""
  return os.path.join(data_dir, "downloads", "manual")


def _expand(path):
  return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _is_prepared(builder):
  """True if `builder.data_dir` holds a finished preparation."""
  return tf.io.gfile.exists(os.path.join(builder.data_dir,
                                         "dataset_info.json"))


def _missing_data_message(name, data_dir, manual_dir, missing, source):
  files = "\n".join(f"  {os.path.join(manual_dir, f)}" for f in missing)
  return (f"dataset {name!r} is not prepared in the data directory {data_dir} "
          f"and its original archives are missing from the manual directory "
          f"{manual_dir}. Put these files there ({source}):\n{files}\n"
          f"(or set ClassificationTask.data_dir / ClassificationTask.manual_dir"
          f"); nothing is ever downloaded.")


def prepared_builder(name, data_dir, manual_dir, archives, source):
  """A tfds builder for `name` with its data prepared in `data_dir`.

  Args:
    name: tfds name, e.g. 'cifar10' or 'imagenet2012'.
    data_dir: tfds data directory (prepared data lives in
      <data_dir>/<name>/<version>).
    manual_dir: directory holding the original archives; None means
      <data_dir>/downloads/manual.
    archives: file names that must all be in `manual_dir` to prepare.
    source: where a user gets the archives (quoted in the error).

  Returns:
    The `tfds.core.DatasetBuilder`, prepared.

  Raises:
    UserError: the data is neither prepared nor preparable from `manual_dir`,
      or an archive is corrupt.
  """
  data_dir = _expand(data_dir)
  manual_dir = _expand(manual_dir or default_manual_dir(data_dir))
  builder = tfds.builder(name, data_dir=data_dir, try_gcs=False)
  if _is_prepared(builder):
    return builder
  missing = [f for f in archives
             if not tf.io.gfile.exists(os.path.join(manual_dir, f))]
  if missing:
    raise errors.UserError(_missing_data_message(
        name, data_dir, manual_dir, missing, source))
  logging.info("Preparing %s in %s from the archives in %s (once).", name,
               data_dir, manual_dir)
  config = tfds.download.DownloadConfig(
      manual_dir=manual_dir, try_download_gcs=False,
      download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  try:
    builder.download_and_prepare(download_config=config)
  except download_manager.NonMatchingChecksumError as e:
    raise errors.UserError(
        f"dataset {name!r}: an archive in {manual_dir} is not the official "
        f"file ({', '.join(archives)}): {e}") from e
  return builder


def load(builder, split, decoders=None):
  """(dataset of (image, int32 label), size) of a prepared builder's split.

  Files are read in their stored order (no file shuffling), so the dataset
  is the same sequence every time; the trainer's seeded split and shuffle
  do the randomisation.
  """
  if split not in builder.info.splits:
    raise errors.UserError(
        f"dataset {builder.name!r} in {builder.data_dir} has splits "
        f"{sorted(builder.info.splits)}, not {split!r}.")
  dataset = builder.as_dataset(
      split=split, shuffle_files=False, as_supervised=True,
      decoders=decoders,
      read_config=tfds.ReadConfig(try_autocache=False))
  dataset = dataset.map(lambda x, y: (x, tf.cast(y, tf.int32)))
  return dataset, builder.info.splits[split].num_examples
