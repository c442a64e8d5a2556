"""The flags the teaching-round benchmarks share, defined in one place.

`benchmark_hypergrad.py` (ours), `benchmark_torch_peer.py` (the PyTorch
peer) and `speed_vs_peer.py` (which runs both and passes these flags on)
time the same round of a CIFAR ResNet, so each shared flag has one name,
default and help, here. `benchmark_segmentation.py` takes the round's flags
with its own defaults. A tool calls `define_round_flags` (and
`define_mode_flag`) once, at import; the flags are the tool's own in
`--help` (this module disclaims them). It imports only absl: the PyTorch
peer, run by its path, imports it as a sibling module without importing
l2t_tf (and so without TensorFlow); the others import
`l2t_tf.experiments.benchmark_flags`.
"""
from absl import flags

flags.disclaim_key_flags()  # Flags defined here are key flags of the caller.

#: name -> (default, help) of the integer flags of one CIFAR ResNet round, in
#: the order `speed_vs_peer.py` passes them on and reports them.
ROUND_FLAGS = {
    "depth": (8, "CIFAR ResNet depth (6n + 2)."),
    "width": (16, "First-stage channels (stages w, 2w, 4w)."),
    "unroll": (5, "N, student steps per stage."),
    "batch_size": (25, "Training batch size."),
    "val_batch_size": (100, "Validation batch size."),
    "rounds": (5, "Timed rounds (after one warm-up round)."),
    "classes": (10, "Number of classes."),
}
#: `hypergradient.MODES`, here without importing TensorFlow.
MODES = ("unrolled", "reverse")


def define_round_flags(names=tuple(ROUND_FLAGS), defaults=None, helps=None,
                       flag_values=flags.FLAGS):
  """Defines the integer flags `names` of `ROUND_FLAGS`.

  Args:
    names: a subset of `ROUND_FLAGS`' keys.
    defaults: name -> default, where a tool's differs from `ROUND_FLAGS`.
    helps: name -> help, likewise.
    flag_values: where to define them (tests: a fresh `flags.FlagValues`).
  Returns:
    `flag_values`.
  """
  defaults, helps = defaults or {}, helps or {}
  for name in names:
    default, help_text = ROUND_FLAGS[name]
    flags.DEFINE_integer(name, defaults.get(name, default),
                         helps.get(name, help_text), flag_values=flag_values)
  return flag_values


def define_mode_flag(help_text="Hypergradient mode.",
                     flag_values=flags.FLAGS):
  """Defines --mode, one of `MODES`, default "unrolled"; returns flag_values."""
  flags.DEFINE_enum("mode", "unrolled", list(MODES), help_text,
                    flag_values=flag_values)
  return flag_values
