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

Conditions where a learned loss should win (issue 23, item 4), applied to
the training split only (the test split stays clean and as it is):

* `symmetric_noise`: a fixed fraction of the labels flipped, each to a
  uniformly drawn other class;
* `long_tailed`: class c subsampled to n_0 * ratio^(-c / (C - 1)) examples;
* `balanced_subset`: a clean, class-balanced trusted subset drawn before
  either (the teacher's fixed validation set, `teach(validation_data=)`).

`corrupt(x, y, condition, ...)` chains them for a `CONDITIONS` name.
"""
import csv
import dataclasses
import importlib.util
import io
import os
import zipfile

import numpy as np

from l2t_tf import errors

NAMES = ("digits", "mnist1d", "breast_cancer", "segment")
# Condition name -> (kind, parameter) applied to the training split.
CONDITIONS = {"clean": (None, None), "noise20": ("noise", 0.2),
              "noise40": ("noise", 0.4), "imbalance10": ("imbalance", 10.0)}


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


# ---- label noise, class imbalance, a trusted subset ---------------------
def _rng(seed):
  return np.random.RandomState(seed)


def symmetric_noise(y, fraction, num_classes, seed):
  """Symmetric label noise: exactly round(fraction * n) labels flipped.

  The flipped examples are drawn without replacement; each flipped label
  y_i becomes (y_i + k_i) mod C with k_i uniform in {1, ..., C - 1}, i.e. a
  uniformly drawn class other than y_i. All draws from
  `np.random.RandomState(seed)`.

  Args:
    y: int class ids [n], in [0, num_classes).
    fraction: the fraction of labels to flip, in [0, 1].
    num_classes: C >= 2.
    seed: an int seed.
  Returns:
    (noisy labels [n] of y's dtype, flipped: bool mask [n] with exactly
    round(fraction * n) True).
  Raises:
    UserError: a fraction outside [0, 1], C < 2 or labels outside [0, C).
  """
  y = np.asarray(y)
  if not 0.0 <= fraction <= 1.0:
    raise errors.UserError(f"noise fraction must be in [0, 1], got "
                           f"{fraction}.")
  if num_classes < 2 or (y.size and (y.min() < 0 or y.max() >= num_classes)):
    raise errors.UserError(f"symmetric_noise needs labels in [0, "
                           f"{num_classes}) and at least 2 classes.")
  rng = _rng(seed)
  count = int(round(fraction * len(y)))
  flipped = np.zeros(len(y), bool)
  flipped[rng.choice(len(y), count, replace=False)] = True
  noisy = y.copy()
  shift = rng.randint(1, num_classes, size=count)
  noisy[flipped] = ((y[flipped] + shift) % num_classes).astype(y.dtype)
  return noisy, flipped


def long_tailed_counts(y, ratio, num_classes=None):
  """[C] examples per class that `long_tailed` keeps.

  n'_c = min(n_c, round(n_0 * ratio^(-c / (C - 1)))): class 0 keeps all
  its n_0 examples, the last class round(n_0 / ratio) (fewer only if it had
  fewer), the classes between decay geometrically. C = num_classes or
  1 + the greatest label.
  """
  y = np.asarray(y)
  classes = int(num_classes or y.max() + 1)
  if classes < 2 or ratio < 1:
    raise errors.UserError(f"long_tailed needs at least 2 classes and an "
                           f"imbalance ratio >= 1, got {classes} classes, "
                           f"ratio {ratio}.")
  have = np.bincount(y, minlength=classes)
  want = np.round(have[0] * float(ratio) ** (
      -np.arange(classes) / (classes - 1))).astype(int)
  return np.minimum(have, want)


def long_tailed_indices(y, ratio, seed, num_classes=None):
  """Sorted indices of the examples `long_tailed` keeps (see there)."""
  y = np.asarray(y)
  rng = _rng(seed)
  keep = [rng.choice(np.flatnonzero(y == c), count, replace=False)
          for c, count in enumerate(long_tailed_counts(y, ratio,
                                                       num_classes))]
  return np.sort(np.concatenate(keep))


def long_tailed(x, y, ratio, seed):
  """A long-tailed (exponentially imbalanced) subsample of (x, y).

  Class c keeps n'_c = min(n_c, round(n_0 * ratio^(-c / (C - 1)))) of its
  n_c examples (C = 1 + the greatest label): class 0 keeps all, the last
  class 1/ratio of class 0's count. Which ones is drawn without
  replacement from `np.random.RandomState(seed)`; the kept examples stay in
  their original order.

  Args:
    x: examples [n, ...] (an array, indexed by the first axis).
    y: int class ids [n].
    ratio: n_0 / n'_{C-1}, >= 1 (e.g. 10).
    seed: an int seed.
  Returns:
    (x [m, ...], y [m]) with m = sum_c n'_c.
  """
  keep = long_tailed_indices(y, ratio, seed)
  return np.asarray(x)[keep], np.asarray(y)[keep]


def balanced_subset(y, size, num_classes, seed):
  """bool mask [n] of `size` examples, as many of each class as can be.

  Class c gets floor(size / C) examples, plus one for the first size mod C
  classes, drawn without replacement from `np.random.RandomState(seed)`.

  Raises:
    UserError: a class has fewer examples than its share.
  """
  y = np.asarray(y)
  rng = _rng(seed)
  mask = np.zeros(len(y), bool)
  for c in range(num_classes):
    share = size // num_classes + (c < size % num_classes)
    members = np.flatnonzero(y == c)
    if len(members) < share:
      raise errors.UserError(
          f"a trusted subset of {size} needs {share} examples of class {c}; "
          f"the training split has {len(members)}.")
    mask[rng.choice(members, share, replace=False)] = True
  return mask


@dataclasses.dataclass
class Corrupted:
  """A training split under a condition (`corrupt`).

  Attributes:
    x, y: what the student trains on (y noisy under a noise condition).
    y_true: y's true labels.
    flipped: bool [len(y)], the labels `symmetric_noise` flipped.
    x_trusted, y_trusted: the clean, class-balanced trusted subset (true
      labels; none of it in x), or None.
  """
  x: np.ndarray
  y: np.ndarray
  y_true: np.ndarray
  flipped: np.ndarray
  x_trusted: np.ndarray = None
  y_trusted: np.ndarray = None


def corrupt(x, y, condition, num_classes, seed, trusted=0):
  """The training split (x, y) under `condition` (a `CONDITIONS` name).

  First, if `trusted` > 0, a clean class-balanced subset of that size is
  drawn (`balanced_subset`, seed 16 * seed + 1) and set aside with its true
  labels; then the rest is corrupted: 'noiseP' flips P % of its labels
  (`symmetric_noise`, seed 16 * seed + 2), 'imbalance10' subsamples it to a
  long tail of ratio 10 (`long_tailed`, seed 16 * seed + 3); 'clean' leaves
  it. Only the training split is given: the test split stays as it is.

  Returns:
    A `Corrupted`.
  """
  if condition not in CONDITIONS:
    raise errors.UserError(f"condition must be one of {tuple(CONDITIONS)}, "
                           f"got {condition!r}.")
  x, y = np.asarray(x), np.asarray(y)
  x_trusted = y_trusted = None
  if trusted:
    chosen = balanced_subset(y, int(trusted), num_classes, 16 * seed + 1)
    x_trusted, y_trusted = x[chosen], y[chosen]
    x, y = x[~chosen], y[~chosen]
  kind, parameter = CONDITIONS[condition]
  noisy, flipped = y, np.zeros(len(y), bool)
  if kind == "noise":
    noisy, flipped = symmetric_noise(y, parameter, num_classes,
                                     16 * seed + 2)
  elif kind == "imbalance":
    keep = long_tailed_indices(y, parameter, 16 * seed + 3, num_classes)
    x, y = x[keep], y[keep]
    noisy, flipped = y, flipped[keep]
  return Corrupted(x=x, y=noisy, y_true=y, flipped=flipped,
                   x_trusted=x_trusted, y_trusted=y_trusted)
