"""The data sets of the cross-data-set teaching benchmark (issue 23).

Each comes from a package that ships it (nothing is downloaded) and is
returned as numpy arrays for `l2t_tf.teach`, with a fixed test split:

* `digits`: scikit-learn's 8x8 handwritten digits (1797, 10 classes), as
  the default job: images [8, 8, 1] in [0, 1]; its fixed test split
  (`data.digits`).
* `mnist1d`: MNIST-1D (Greydanus & Kobak 2024; `pip install mnist1d`),
  40-sample 1-D signals procedurally generated from 10 digit templates with
  shifts, scaling, shear, correlated noise: 4000 train / 1000 test, 10
  classes, x [40, 1]. A different, synthetic data set (not MNIST).
* `breast_cancer`: scikit-learn's Wisconsin diagnostic breast cancer set
  (569 real patients, 30 features of cell nuclei, 2 classes).
* `segment`: the UCI/Statlog image segmentation set (2310 real 3x3 regions
  of 7 hand-segmented outdoor images, 18 features such as colour means and
  edge densities, 7 balanced classes), the `segment.csv.zip` that the
  `river` wheel ships (`pip install river`; read as a file, river is not
  imported). 224 of its rows repeat an earlier row exactly; one copy of
  each is kept (2086 examples), so no test example is a training one.

Tabular features are standardised with the training part's mean and
standard deviation. Test splits of the tabular sets: every 5th example of
each class (stratified, seed-free), as digits'.
"""
import csv
import importlib.util
import io
import os
import zipfile

import numpy as np

from l2t_tf import errors

NAMES = ("digits", "mnist1d", "breast_cancer", "segment")


def _stratified_test_mask(y, every=5):
  test = np.zeros(len(y), bool)
  for c in np.unique(y):
    test[np.flatnonzero(y == c)[::every]] = True
  return test


def _standardised_split(x, y):
  test = _stratified_test_mask(y)
  mean, std = x[~test].mean(0), x[~test].std(0) + 1e-8
  x = ((x - mean) / std).astype(np.float32)
  return (x[~test], y[~test].astype(np.int32), x[test],
          y[test].astype(np.int32))


def _missing(package, what):
  raise errors.UserError(
      f"{what} needs the package {package!r}, which ships it: pip install "
      f"{package} (or pip install -e \".[bench]\").")


def digits():
  from l2t_tf.data import digits as digits_lib  # pylint: disable=g-import-not-at-top
  x, y, test = digits_lib._arrays()  # pylint: disable=protected-access
  return x[~test], y[~test], x[test], y[test]


def mnist1d():
  if importlib.util.find_spec("mnist1d") is None:
    _missing("mnist1d", "the MNIST-1D data set")
  from mnist1d import data as mnist1d_data  # pylint: disable=g-import-not-at-top
  data = mnist1d_data.make_dataset(mnist1d_data.get_dataset_args())
  return (data["x"][..., None].astype(np.float32),
          data["y"].astype(np.int32),
          data["x_test"][..., None].astype(np.float32),
          data["y_test"].astype(np.int32))


def breast_cancer():
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  x, y = datasets.load_breast_cancer(return_X_y=True)
  return _standardised_split(x, y)


def segment():
  spec = importlib.util.find_spec("river")
  if spec is None:
    _missing("river", "the image segmentation data set")
  path = os.path.join(os.path.dirname(spec.origin), "datasets",
                      "segment.csv.zip")
  with zipfile.ZipFile(path) as archive:
    text = archive.read(archive.namelist()[0]).decode()
  rows = list(csv.reader(io.StringIO(text)))[1:]
  classes = sorted({row[-1] for row in rows})
  x = np.array([[float(v) for v in row[:-1]] for row in rows])
  y = np.array([classes.index(row[-1]) for row in rows])
  _, first = np.unique(x, axis=0, return_index=True)
  keep = np.sort(first)  # 224 rows repeat earlier ones: one copy each.
  return _standardised_split(x[keep], y[keep])


def load(name):
  """(x_train, y_train, x_test, y_test) numpy arrays of the set `name`."""
  if name not in NAMES:
    raise errors.UserError(f"data set must be one of {NAMES}, got {name!r}.")
  return globals()[name]()
