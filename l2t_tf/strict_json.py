"""Strict JSON: what the project writes parses with any JSON parser.

Python's `json` writes NaN and Infinity by default, which are not JSON
(RFC 8259): `JSON.parse`, `jq` and many others reject them. A diverged run
has NaN losses, so every JSON file and line the project writes goes through
`dumps` or `dump`: they replace a non-finite number, at any depth of dicts
and lists, by `null` and record where in the flag key `non_finite` of the
top-level dict: a list of paths ("test_loss", "history.0.test_loss": keys
and list indices joined by dots), in the order they occur. The flag is
absent when every number was finite. A top-level list gets its nulls but
has no place for a flag.

numpy scalars and arrays become Python numbers and lists, tuples become
lists. The result is written with `allow_nan=False`: anything else that is
not JSON is an error, not a file that no parser reads.
"""
import json
import math

import numpy as np

FLAG = "non_finite"


def sanitize(value, path=""):
  """(`value` with non-finite floats as None, the paths replaced).

  Args:
    value: nested dicts, lists and tuples of JSON values, numpy scalars or
      arrays.
    path: the path of `value` itself ('' at the top).
  """
  if isinstance(value, np.ndarray):
    value = value.tolist()
  elif isinstance(value, np.generic):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None, [path]
  if isinstance(value, dict):
    return _sanitize_items(value.items(), path, dict)
  if isinstance(value, (list, tuple)):
    return _sanitize_items(enumerate(value), path, list)
  return value, []


def _sanitize_items(items, path, container):
  clean, replaced = [], []
  for key, item in items:
    item, paths = sanitize(item, f"{path}.{key}" if path else str(key))
    clean.append((key, item))
    replaced += paths
  if container is dict:
    return dict(clean), replaced
  return [item for _, item in clean], replaced


def strict(value):
  """`value` sanitised, with the `non_finite` flag if a dict needs one.

  A flag already in `value` (e.g. a history read back to be extended) keeps
  the paths that still hold null: their NaN was replaced when it was written.
  """
  previous = []
  if isinstance(value, dict):
    previous = value.get(FLAG) or []
    value = {k: v for k, v in value.items() if k != FLAG}
  clean, replaced = sanitize(value)
  kept = [p for p in previous if _holds_null(clean, p) and p not in replaced]
  if (kept or replaced) and isinstance(clean, dict):
    clean[FLAG] = kept + replaced
  return clean


def _holds_null(value, path):
  """Whether `path` (as written in the flag) leads to a None in `value`."""
  for key in str(path).split("."):
    if isinstance(value, dict) and key in value:
      value = value[key]
    elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
      value = value[int(key)]
    else:
      return False
  return value is None


def dumps(value, **kwargs):
  """`json.dumps` of `strict(value)`, NaN and Infinity refused."""
  return json.dumps(strict(value), allow_nan=False, **kwargs)


def dump(value, f, **kwargs):
  """`json.dump` of `strict(value)` into file `f`, NaN and Infinity refused."""
  json.dump(strict(value), f, allow_nan=False, **kwargs)
