"""Variables checkpointed by name, not by position.

`tf.train.Checkpoint` tracks Keras models (by their layer structure) and
`tf.Module`s (by attribute), but not the variables of a Keras 3 *layer* that
keeps its weights in Python lists (the DLN, the LSTM teacher, the L2T-DLF
teacher): tracked through a layer, they are silently missing from the
checkpoint. `layer_variables(layer)` names each of them by its path relative
to the layer ('kernel_0', 'lstm_1/recurrent_kernel'); a dict of such names,
held by a `tf.Module` or passed to a checkpoint (both track a dict by its
keys), is saved and restored by key, so adding a layer or reordering construction can no longer restore one
weight into another. `restore` then fails loudly (`assert_existing_objects_
matched`) if the checkpoint lacks a variable the program has.
"""

#: Keras' per-layer random-seed state (`SeedGenerator`): auto-numbered
#: (process-dependent names) and not state of ours (no dropout is used).
_SKIPPED_PREFIX = "seed_generator"


def relative_path(variable, layer):
  """`variable.path` without the leading '<layer.name>/' (if it has one)."""
  prefix = layer.name + "/"
  path = variable.path
  return path[len(prefix):] if path.startswith(prefix) else path


def layer_variables(layer):
  """{path relative to `layer`: variable} of every weight of a Keras layer.

  Raises:
    ValueError: if two variables have the same relative path (a layer built
      with auto-numbered sublayer names would give such clashes across runs).
  """
  named = {}
  for variable in layer.variables:
    name = relative_path(variable, layer)
    if name.split("/")[0].startswith(_SKIPPED_PREFIX):
      continue
    if name in named:
      raise ValueError(f"{layer.name}: two variables named {name!r}; give "
                       f"its sublayers explicit names.")
    named[name] = variable
  return named


def restore(checkpoint, path):
  """Restores `path` into `checkpoint`; every existing variable must match.

  Returns:
    The load status (already checked).
  """
  status = checkpoint.restore(path)
  status.assert_existing_objects_matched()
  return status
