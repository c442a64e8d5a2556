r"""Where the time of one L2T-DLN teaching round goes; prints one JSON line.

  python tools/profile_round.py                          # N = 5
  python tools/profile_round.py --unroll=25 --rounds=2

Issue 25, item 2. The round is `tools/benchmark_hypergrad.py`'s (built by
`experiment.build_experiment` with the LSTM teacher, a CIFAR ResNet on
random CIFAR-shaped data, `--mode`, batch / validation batch sizes, N =
`--unroll`). After `--warmup` rounds (tracing; the first rounds also keep
copies for the fallback to reverse mode), `--unprofiled` rounds are timed
without the profiler, then `--rounds` rounds are recorded by TensorFlow's
profiler (`tf.profiler.experimental`, host tracer: one event per op
kernel run), one profiler session per round. The traces
(`<logdir>/plugins/profile/<run>/<host>.xplane.pb`, XSpace protocol
buffers) are read back and every op's self time (its duration less the
ops run inside it on the same thread) is put into a *phase* and a
*component* by its name (`categorize`), which the name scopes of
`hypergradient.py` (student_steps, hypergradient, validation_error),
`students/batch_norm.py` (exact_moments), `dln.py` (dln_rows, dln_mlp,
dln_mean) and `teacher.py` (teacher) make explicit:

phases
  student_forward / student_backward: the N steps' forward pass and their
    inner tape's backward (stages I and III, 2N steps a round);
  hypergradient: the outer tape's gradient, i.e. through the unrolled loop
    (the reverse-over-reverse products) and e_val's backward; in reverse
    mode the backward loop's Hessian-vector products;
  validation_error: e_val's forward on the validation batch;
  teacher: the LSTM teacher and every op of a tf.function that runs the
    teacher and no student step (the updater's step, its Adam);
  other: the rest (reductions of the results, finite checks, ...).
components
  dln (PairwiseDLN: its rows, MLP and mean, and their derivatives),
  bn_statistics (the exact BatchNorm's batch mean and variance, and their
  derivatives), bn_normalize (the rest of the BatchNorm layers), copies
  (`COPY_TYPES`: identities, variable reads and writes, the loop's stacks of
  saved intermediates), control_flow (`CONTROL_FLOW_TYPES`), rest.

`categories` (exclusive; seconds per round and fraction of the round's wall
time, summing to 1) are: teacher (its phase), then by component copies,
control_flow, dln, bn_statistics, bn_normalize, then the rest by phase
(student_steps = forward + backward, hypergradient, validation_error,
other_ops), and the time no op ran:
  executor: the executor was processing (ExecutorState::Process) but no op
    kernel ran;
  tf_function_dispatch: inside a tf.function call (its Python `__call__`
    included) with no executor activity;
  eager_ops: single eager ops run by the round's Python;
  python: the rest of the round's wall time (the round's own Python).
Op time is measured per thread and ops run in parallel on the cores, so
the ops' share of the wall time (the union of their intervals, `op_busy`)
is divided among the op categories in proportion to their summed self
times (`op_thread_s` has those sums; `parallelism` = their total /
op_busy). `phase_component` gives the full table of op thread-seconds per
round. The profiler's own cost inflates the profiled rounds:
`profiler_slowdown` = median profiled / median unprofiled round; so
`crosscheck` times N student steps alone and the whole unroll without the
profiler, and compares the hypergradient's share of a stage with the
profile's (`--crosscheck`).
"""
import bisect
import collections
import datetime
import functools
import glob
import itertools
import os
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf
# The XSpace protocol buffer the profiler writes (no public TF module
# re-exports it; tensorboard-plugin-profile is not a dependency).
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from l2t_tf import dln_updaters
from l2t_tf import experiment
from l2t_tf import hypergradient
from l2t_tf import strict_json
from l2t_tf.experiments import benchmark_flags
from l2t_tf.students import batch_norm
from l2t_tf.students import cifar_resnet
from l2t_tf.tasks import synthetic

#: The name of the TraceMe that marks each profiled round.
ROUND_EVENT = "profile_round"
#: Op types that move data rather than compute.
COPY_TYPES = frozenset({
    "Identity", "IdentityN", "Snapshot", "ReadVariableOp", "AssignVariableOp",
    "_EagerConst", "_Send", "_Recv", "_HostSend", "_HostRecv", "MemcpyH2D",
    "MemcpyD2H", "TensorListPushBack", "TensorListPopBack",
    "TensorListFromTensor", "TensorListStack", "TensorListGetItem",
    "TensorListSetItem", "TensorListReserve", "TensorListElementShape",
    "TensorListLength", "TensorListConcatV2", "TensorListSplit",
    "TensorListScatterIntoExistingList", "TensorListGather"})
#: Op types of lowered control flow (the executor's loop frames).
CONTROL_FLOW_TYPES = frozenset({
    "Enter", "Exit", "Merge", "Switch", "NextIteration", "LoopCond",
    "ControlTrigger", "NoOp", "StatelessWhile", "While", "If",
    "StatelessIf", "PartitionedCall", "StatefulPartitionedCall"})
PHASES = ("student_forward", "student_backward", "hypergradient",
          "validation_error", "teacher", "other")
COMPONENTS = ("dln", "bn_statistics", "bn_normalize", "copies",
              "control_flow", "rest")
#: The categories of ops, then of the time no op ran, in the output's order.
OP_CATEGORIES = ("student_steps", "hypergradient", "validation_error",
                 "bn_statistics", "bn_normalize", "dln", "teacher", "copies",
                 "control_flow", "other_ops")
IDLE_CATEGORIES = ("executor", "tf_function_dispatch", "eager_ops", "python")
CATEGORIES = OP_CATEGORIES + IDLE_CATEGORIES

# Name scopes (a segment of an op's name, perhaps made unique by TF with a
# suffix _<k>) and, for Keras layers, substrings of their default names.
_TEACHER_SCOPES, _TEACHER_LAYERS = ("teacher",), ("lstm_teacher",)
_DLN_SCOPES, _DLN_LAYERS = ("dln_rows", "dln_mlp", "dln_mean"), (
    "pairwise_dln",)
_OUTER_TAPE = "gradient_tape"
_UNROLL_SCOPES = {hypergradient.STUDENT_STEPS: "student",
                  hypergradient.HYPERGRADIENT: "hyper",
                  hypergradient.VALIDATION_ERROR: "validation",
                  _OUTER_TAPE: "outer"}
_EXECUTOR_EVENT = "ExecutorState::Process"
_EAGER_PREFIX = "EagerLocalExecute: "
_FUNCTION_STAT = "tf_function_call"


def _segments(name):
  """The scopes of an op's name, without TF's uniquifying suffixes _<k>."""
  return [re.sub(r"_\d+$", "", segment) for segment in name.split("/")]


def _marked(name, scopes, layers):
  """Whether `name` is in one of `scopes` or of the Keras `layers`."""
  return (any(s in scopes for s in _segments(name)) or
          any(layer in name for layer in layers))


def _first_scope(name):
  """The first of the unroll's scopes, or the outer tape, opening `name`.

  Scopes nest: a step's inner tape is under student_steps/ ... /
  gradient_tape/, the outer tape's gradient of the loop under gradient_tape/
  ... / student_steps/ ... while_grad; the first decides.
  """
  for segment in _segments(name):
    if segment in _UNROLL_SCOPES:
      return _UNROLL_SCOPES[segment]
  return None


def phase_of(name, teacher_function=False):
  """The phase (`PHASES`) of an op named `name` (its node name)."""
  if teacher_function or _marked(name, _TEACHER_SCOPES, _TEACHER_LAYERS):
    return "teacher"
  if "while_grad" in _segments(name):
    return "hypergradient"
  first = _first_scope(name)
  if first in ("hyper", "outer"):
    return "hypergradient"
  if first == "student":
    return ("student_backward" if _OUTER_TAPE in _segments(name)
            else "student_forward")
  if first == "validation":
    return "validation_error"
  return "other"


def component_of(name, op_type):
  """The component (`COMPONENTS`) of an op of type `op_type` named `name`."""
  if op_type in COPY_TYPES:
    return "copies"
  if op_type in CONTROL_FLOW_TYPES:
    return "control_flow"
  if _marked(name, _DLN_SCOPES, _DLN_LAYERS):
    return "dln"
  if batch_norm.MOMENTS_SCOPE in _segments(name):
    return "bn_statistics"
  if "batch_normalization" in name:
    return "bn_normalize"
  return "rest"


def category_of(phase, component):
  """The exclusive category (`OP_CATEGORIES`) of a (phase, component)."""
  if phase == "teacher":
    return "teacher"
  if component != "rest":
    return component
  return {"student_forward": "student_steps",
          "student_backward": "student_steps",
          "other": "other_ops"}.get(phase, phase)


def categorize(name, op_type, teacher_function=False):
  """(phase, component, category) of one op."""
  phase = phase_of(name, teacher_function)
  component = component_of(name, op_type)
  return phase, component, category_of(phase, component)


# ---- reading the trace ---------------------------------------------------
Event = collections.namedtuple("Event", ["name", "start", "end", "stats"])


def read_xspaces(logdir):
  """The XSpaces of every profile under `logdir`, oldest first."""
  paths = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*",
                                        "*.xplane.pb")))
  if not paths:
    raise FileNotFoundError(f"no *.xplane.pb under {logdir}/plugins/profile")
  spaces = []
  for path in paths:
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
      space.ParseFromString(f.read())
    spaces.append(space)
  return spaces


def _host_plane(space):
  for plane in space.planes:
    if plane.name == "/host:CPU":
      return plane
  raise ValueError("the profile has no /host:CPU plane.")


def _lines(plane):
  """[[Event, ...] per line], times in ps since the epoch, sorted."""
  names = {k: v.name for k, v in plane.event_metadata.items()}
  stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
  lines = []
  for line in plane.lines:
    base = line.timestamp_ns * 1000
    events = []
    for e in line.events:
      start = base + e.offset_ps
      stats = frozenset(stat_names.get(s.metadata_id, "") for s in e.stats)
      events.append(Event(names.get(e.metadata_id, ""), start,
                          start + e.duration_ps, stats))
    events.sort(key=lambda e: (e.start, -e.end))
    lines.append(events)
  return lines


def _op_parts(name):
  """(node name, op type) of an op kernel's event, or None."""
  if "::" in name or name.count(":") != 1:
    return None
  node, op_type = name.split(":")
  return (node, op_type) if node and op_type and " " not in op_type else None


def _self_times(events):
  """[[Event, node, type, self ps]] of the op events of one sorted line."""
  ops, stack = [], []  # stack: the open op events, innermost last.
  for event in events:
    parts = _op_parts(event.name)
    if parts is None:
      continue
    while stack and stack[-1][0].end <= event.start:
      stack.pop()
    if stack:  # Nested in an op on the same thread: not its parent's time.
      parent = stack[-1]
      parent[3] -= min(event.end, parent[0].end) - event.start
    op = [event, parts[0], parts[1], event.end - event.start]
    ops.append(op)
    stack.append(op)
  return ops


def _union(intervals):
  """Total length of the union of (start, end) intervals."""
  total, last = 0, None
  for start, end in sorted(intervals):
    if last is None or start > last:
      total += end - start
      last = end
    elif end > last:
      total += end - last
      last = end
  return total


def _clip(intervals, windows):
  """The parts of `intervals` inside the sorted, disjoint `windows`."""
  out = []
  for start, end in intervals:
    for w_start, w_end in windows:
      lo, hi = max(start, w_start), min(end, w_end)
      if lo < hi:
        out.append((lo, hi))
  return out


def _containing(windows, starts, time_ps):
  """The index of the window of `windows` (sorted by start) holding time_ps."""
  i = bisect.bisect_right(starts, time_ps) - 1
  if i >= 0 and windows[i][1] <= time_ps < windows[i][2]:
    return i
  return None


def _concrete_name(events, i):
  """The concrete function that the tf.function call events[i] ran."""
  call = events[i]
  for event in itertools.islice(events, i + 1, None):
    if event.start >= call.end:
      break
    if event.name.startswith(_EAGER_PREFIX + "__inference"):
      return event.name[len(_EAGER_PREFIX):]
  return call.name


class _Totals:
  """What `aggregate` sums over profiles (times in ps)."""

  def __init__(self):
    self.rounds = self.wall = 0
    self.layers = [0] * 4  # Cumulative unions: ops, +executor, +calls, +eager.
    self.thread = collections.Counter()
    self.table = collections.defaultdict(collections.Counter)
    self.by_type, self.by_op = collections.Counter(), collections.Counter()
    self.by_function = collections.defaultdict(collections.Counter)
    self.teacher_functions = set()

  def add(self, space):
    """Adds the marked rounds of one XSpace."""
    lines = _lines(_host_plane(space))
    rounds = sorted((e.start, e.end) for events in lines for e in events
                    if e.name == ROUND_EVENT)
    marked = [(ROUND_EVENT,) + r for r in rounds]
    starts = [r[0] for r in rounds]
    inside = lambda t: _containing(marked, starts, t) is not None
    self.rounds += len(rounds)
    self.wall += sum(end - start for start, end in rounds)

    # tf.function calls (their Python __call__) and eager ops of the rounds.
    functions, eager, ops, executor = [], [], [], []
    for events in lines:
      for i, e in enumerate(events):
        if not inside(e.start):
          continue
        if _FUNCTION_STAT in e.stats:
          functions.append((_concrete_name(events, i), e.start, e.end))
        elif (e.name.startswith(_EAGER_PREFIX) and
              "__inference" not in e.name):
          eager.append((e.start, e.end))
        elif e.name == _EXECUTOR_EVENT:
          executor.append((e.start, e.end))
      ops += [op for op in _self_times(events) if inside(op[0].start)]
    functions.sort(key=lambda f: f[1])
    function_starts = [f[1] for f in functions]
    where = [_containing(functions, function_starts, op[0].start)
             for op in ops]
    # A function that runs the teacher and no student step: the updater's.
    teaching, stepping = set(), set()
    for op, index in zip(ops, where):
      if index is None:
        continue
      name = functions[index][0]
      if _marked(op[1], _TEACHER_SCOPES, _TEACHER_LAYERS):
        teaching.add(name)
      if (_first_scope(op[1]) in ("student", "hyper", "validation") or
          "while_grad" in _segments(op[1])):
        stepping.add(name)
    teacher_functions = teaching - stepping
    self.teacher_functions |= teacher_functions

    for (_, node, op_type, self_ps), index in zip(ops, where):
      function = functions[index][0] if index is not None else "(eager)"
      phase, component, category = categorize(
          node, op_type, function in teacher_functions)
      self.thread[category] += self_ps
      self.table[phase][component] += self_ps
      self.by_type[op_type] += self_ps
      self.by_op[f"{node}:{op_type}"] += self_ps
      self.by_function[function]["op_thread_ps"] += self_ps
    for name, start, end in functions:
      self.by_function[name]["wall_ps"] += end - start
      self.by_function[name]["calls"] += 1

    covered = []
    for i, layer in enumerate([[(op[0].start, op[0].end) for op in ops],
                               executor, [f[1:] for f in functions], eager]):
      covered += _clip(layer, rounds)
      self.layers[i] += _union(covered)


def aggregate(spaces, top=12):
  """Sorts the op time of the marked rounds of profiles into categories.

  Args:
    spaces: `xplane_pb2.XSpace`s (or one) holding rounds marked by
      `ROUND_EVENT` TraceMe events (`profile_rounds`).
    top: how many of the longest op types and ops to list.
  Returns:
    a dict (the module docstring): rounds, wall_s (per round), categories
    {name: {"s", "fraction"}}, op_busy_s, op_thread_s, parallelism,
    phase_component, functions, teacher_functions, top_op_types, top_ops.
  """
  totals = _Totals()
  for space in ([spaces] if isinstance(spaces, xplane_pb2.XSpace)
                else spaces):
    totals.add(space)
  if not totals.rounds:
    raise ValueError(f"the profile has no {ROUND_EVENT!r} events.")
  count, wall, layers = totals.rounds, totals.wall, totals.layers
  op_busy, thread = layers[0], totals.thread
  thread_total = sum(thread.values())
  seconds = {c: (op_busy * thread[c] / thread_total if thread_total else 0)
             for c in OP_CATEGORIES}
  seconds.update(zip(IDLE_CATEGORIES, (
      layers[1] - layers[0], layers[2] - layers[1], layers[3] - layers[2],
      wall - layers[3])))
  per_round = lambda ps: round(ps / 1e12 / count, 6)
  ranked = lambda counter: [[k, per_round(v)]
                            for k, v in counter.most_common(top)]
  return {
      "rounds": count,
      "wall_s": per_round(wall),
      "categories": {c: {"s": per_round(seconds[c]),
                         "fraction": round(seconds[c] / wall, 4)}
                     for c in CATEGORIES},
      "op_busy_s": per_round(op_busy),
      "op_thread_s": {c: per_round(thread[c]) for c in OP_CATEGORIES},
      "op_thread_total_s": per_round(thread_total),
      "parallelism": round(thread_total / op_busy, 3) if op_busy else None,
      "phase_component": {p: {c: per_round(totals.table[p][c])
                              for c in COMPONENTS} for p in PHASES},
      "functions": {name: {"calls": v["calls"] / count,
                           "wall_s": per_round(v["wall_ps"]),
                           "op_thread_s": per_round(v["op_thread_ps"])}
                    for name, v in sorted(totals.by_function.items())},
      "teacher_functions": sorted(totals.teacher_functions),
      "top_op_types": ranked(totals.by_type),
      "top_ops": ranked(totals.by_op),
  }


# ---- running the round -----------------------------------------------------
def profile_rounds(round_fn, batches, logdir):
  """Runs `round_fn(*b)` for each b of `batches`, each under the profiler.

  One profiler session per round (a session's later rounds ran slower:
  its buffers grow), each round marked by a `ROUND_EVENT` TraceMe; the
  traces are under `logdir`. Returns the rounds' wall times (perf_counter).
  """
  times = []
  for i, args in enumerate(batches):
    tf.profiler.experimental.start(logdir)
    try:
      start = time.perf_counter()
      with tf.profiler.experimental.Trace(ROUND_EVENT, step_num=i, _r=1):
        round_fn(*args)
      times.append(time.perf_counter() - start)
    finally:
      tf.profiler.experimental.stop()
    time.sleep(1.1)  # Runs are named by the second they start in.
  return times


def timed_rounds(round_fn, batches):
  """Wall times of `round_fn(*b)` for each b of `batches`, unprofiled."""
  times = []
  for args in batches:
    start = time.perf_counter()
    round_fn(*args)
    times.append(time.perf_counter() - start)
  return times


def profile(round_fn, make_batches, rounds, warmup=2, unprofiled=3,
            logdir=None, top=12):
  """Warms up, times unprofiled rounds, profiles `rounds`; aggregates.

  Args:
    round_fn: (train_batches, validation_batch) -> anything, one round.
    make_batches: () -> (train_batches, validation_batch), new data.
    rounds: profiled rounds.
    warmup: rounds run first, not measured.
    unprofiled: rounds timed without the profiler.
    logdir: where the profiler writes (None: a temporary directory, removed).
    top: `aggregate`'s.
  Returns:
    `aggregate`'s dict plus round_s_profiled and round_s_unprofiled
    (medians of perf_counter times) and profiler_slowdown.
  """
  for _ in range(warmup):
    round_fn(*make_batches())
  plain = timed_rounds(round_fn, [make_batches() for _ in range(unprofiled)])
  directory = logdir or tempfile.mkdtemp(prefix="profile_round_")
  try:
    data = [make_batches() for _ in range(rounds)]
    profiled = profile_rounds(round_fn, data, directory)
    result = aggregate(read_xspaces(directory), top)
  finally:
    if logdir is None:
      shutil.rmtree(directory, ignore_errors=True)
  result["round_s_profiled"] = round(statistics.median(profiled), 4)
  if plain:
    result["round_s_unprofiled"] = round(statistics.median(plain), 4)
    result["profiler_slowdown"] = round(
        statistics.median(profiled) / statistics.median(plain), 3)
  return result


def crosscheck(built, make_batches, repeats, mode="unrolled",
               learning_rate=0.1):
  """The hypergradient's share of a stage, timed without the profiler.

  The profiler slows the round down (`profiler_slowdown`), perhaps not
  evenly. This times, alternately and in separate `hypergradient.function`s
  on `built`'s student and DLN, N student steps alone (`sgd_steps`) and the
  whole unroll (the same steps, e_val and the hypergradient, as a round's
  stage does), and compares hypergradient_share = 1 - steps / unroll with
  the profile's (`profile_share`).

  Args:
    built: an `experiment.Experiment` of the L2T-DLN method.
    make_batches: () -> (train_batches [stages, N, ...], validation_batch).
    repeats: timed calls of each (after one warm-up call each).
    mode: the hypergradient mode.
    learning_rate: the student's.
  Returns:
    {"steps_s", "unroll_s" (medians), "hypergradient_share"}.
  """
  student, dln, task = built.student, built.dln, built.task
  apply = hypergradient.stateless_apply(student)
  loss = lambda y, outputs: task.student_loss(dln, y, outputs)

  def weights():
    return ([v.value for v in student.trainable_variables],
            [v.value for v in student.non_trainable_variables])

  # Each returns everything it computes: an unused result would be pruned.
  @hypergradient.function
  def steps(batches):
    theta, state = weights()
    return hypergradient.sgd_steps(apply, theta, state, loss, batches,
                                   learning_rate)

  @hypergradient.function
  def unroll(batches, validation_batch):
    theta, state = weights()
    return tuple(hypergradient.unroll(
        apply, theta, state, loss, task.validation_error, batches,
        validation_batch, learning_rate, dln.trainable_variables, mode,
        validation_training=True))  # The rounds' default.

  times = collections.defaultdict(list)
  for i in range(repeats + 1):
    train, validation = make_batches()
    block = tf.nest.map_structure(lambda t: t[0], train)
    for name, fn, args in (("steps_s", steps, (block,)),
                           ("unroll_s", unroll, (block, validation))):
      start = time.perf_counter()
      tf.nest.map_structure(lambda t: t.numpy(), fn(*args))
      if i:  # The first call traces.
        times[name].append(time.perf_counter() - start)
  medians = {k: statistics.median(v) for k, v in times.items()}
  return {k: round(v, 4) for k, v in medians.items()} | {
      "hypergradient_share": round(1 - medians["steps_s"] /
                                   medians["unroll_s"], 3)}


def profile_share(result):
  """The profile's counterpart of `crosscheck`'s hypergradient_share.

  (hypergradient + validation_error) / (those + the student phases), in
  op thread-seconds of `aggregate`'s phase_component.
  """
  table = result["phase_component"]
  total = lambda phase: sum(table[phase].values())
  hyper = total("hypergradient") + total("validation_error")
  steps = total("student_forward") + total("student_backward")
  return round(hyper / (hyper + steps), 3) if hyper + steps else None


def define_flags(flag_values=flags.FLAGS):
  """The tool's flags; defined when it runs, so that importing it (tests)
  defines none next to another tool's round flags."""
  benchmark_flags.define_round_flags(
      defaults={"rounds": 3},
      helps={"rounds": "Profiled rounds (after the warm-up and unprofiled "
                       "rounds)."}, flag_values=flag_values)
  benchmark_flags.define_mode_flag(flag_values=flag_values)
  flags.DEFINE_integer("warmup", 2, "Rounds run before any measurement "
                       "(tracing; the first rounds also copy the state for "
                       "the fallback to reverse mode).",
                       flag_values=flag_values)
  flags.DEFINE_integer("unprofiled", 3, "Rounds timed without the profiler "
                       "(its overhead: profiler_slowdown).",
                       flag_values=flag_values)
  flags.DEFINE_string("logdir", None, "Keep the profiles here (TensorBoard's "
                      "profile plugin reads them); default: a temporary "
                      "directory, removed.", flag_values=flag_values)
  flags.DEFINE_integer("top", 12, "Op types and ops listed, longest first.",
                       flag_values=flag_values)
  flags.DEFINE_integer("crosscheck", 3, "Timed calls of `crosscheck` (0: "
                       "none).", flag_values=flag_values)


FLAGS = flags.FLAGS


def main(argv):
  del argv
  load = [round(v, 2) for v in os.getloadavg()]
  started = datetime.datetime.now(datetime.timezone.utc)
  rng = np.random.default_rng(0)
  student = functools.partial(cifar_resnet.cifar_resnet, depth=FLAGS.depth,
                              width=FLAGS.width)
  task = synthetic.SyntheticImageTask(num_classes=FLAGS.classes,
                                      student=student)
  built = experiment.build_experiment(  # benchmark_hypergrad's wiring.
      task, tf.distribute.get_strategy(), updater=dln_updaters.TeacherUpdater,
      train_comparison=False, learning_rate=0.1,
      hypergradient_mode=FLAGS.mode, seed=0)
  n = FLAGS.unroll
  make = lambda: (task.data.batch(rng, (2, n, FLAGS.batch_size)),
                  task.data.batch(rng, (FLAGS.val_batch_size,)))
  result = profile(built.round, make, FLAGS.rounds, FLAGS.warmup,
                   FLAGS.unprofiled, FLAGS.logdir, FLAGS.top)
  if FLAGS.crosscheck:
    result["crosscheck"] = dict(
        crosscheck(built, make, FLAGS.crosscheck, FLAGS.mode),
        profile_hypergradient_share=profile_share(result))
  print(strict_json.dumps(dict({
      "command": shlex.join(["python", "tools/profile_round.py"] +
                            sys.argv[1:]),
      "date": started.strftime("%Y-%m-%d %H:%M UTC"),
      "load_average": load,
      "settings": {name: getattr(FLAGS, name) for name in tuple(
          benchmark_flags.ROUND_FLAGS) + ("mode", "warmup", "unprofiled",
                                          "crosscheck")},
      "logdir": FLAGS.logdir,
  }, **result)))


if __name__ == "__main__":
  define_flags()
  app.run(main)
