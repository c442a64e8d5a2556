"""The one place that chooses the `tf.distribute` strategy (tf-agents style).

`default`: one device. `mirrored`: all local GPUs (or `devices`), e.g. two
logical CPUs in tests. `multi_worker`: `MultiWorkerMirroredStrategy` over the
cluster in the `TF_CONFIG` environment variable (design notes Sec. 5), with
RING collectives. It must be created before any other TensorFlow op:
`train_eval` builds the strategy first.

A lost worker stops the others instead of hanging them, in two ways:

* Its collective ops carry no per-op timeout: TensorFlow starts a watchdog
  thread per timed collective that sleeps for the whole timeout, so a worker
  would hold timeout x collectives per second threads. A peer that dies or
  is stopped (SIGSTOP, a frozen host) is caught anyway, during any
  collective, by the heartbeats of TensorFlow's coordination service, which
  MultiWorkerMirroredStrategy starts: the collectives are aborted with
  UnavailableError naming the peer (default heartbeat timeout: 10 s).
* `wait_for_peers`, a coordination-service barrier with the timeout
  `get_strategy.collective_timeout_s` that the trainer passes before every
  round, catches a peer that is alive but does not get there (stuck in I/O,
  say): DeadlineExceededError naming it. Before it, each peer is asked for
  its health, so a dead one is named at once. Both are RPCs, no thread. A
  peer stuck in the middle of a round, still sending heartbeats, is not
  caught.
"""
import json
import os
import re

import gin
import tensorflow as tf
from tensorflow.python.eager import context as eager_context

from l2t_tf import errors

STRATEGIES = ("default", "mirrored", "multi_worker")
DEFAULT_COLLECTIVE_TIMEOUT_S = 120.0


@gin.configurable
def get_strategy(name="default", devices=None,
                 collective_timeout_s=DEFAULT_COLLECTIVE_TIMEOUT_S):
  """Returns the strategy `name` ('default', 'mirrored' or 'multi_worker').

  Args:
    name: which strategy.
    devices: devices of the 'mirrored' strategy (default: all GPUs or CPU).
    collective_timeout_s: 'multi_worker' only: seconds a worker waits for
      its peers at the barrier before every round (`wait_for_peers`) before
      it fails (a stalled worker); dead or stopped workers are caught by
      heartbeats, see the module docstring.
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy(devices=devices)
  if name == "multi_worker":
    return multi_worker_strategy(collective_timeout_s)
  raise errors.UserError(f"get_strategy.name must be one of {STRATEGIES}, got "
                         f"{name!r}.")


def cluster_from_env():
  """(cluster dict, task dict) from TF_CONFIG; UserError if it is unusable."""
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    raise errors.UserError(
        "get_strategy.name='multi_worker' needs the TF_CONFIG environment "
        "variable (cluster and task of this worker); `python -m "
        "l2t_tf.launch` sets it for local workers.")
  try:
    tf_config = json.loads(raw)
    cluster, task = tf_config["cluster"], tf_config["task"]
    workers = cluster["worker"]
    index = int(task["index"])
  except (ValueError, KeyError, TypeError) as e:
    raise errors.UserError(
        f"TF_CONFIG must be JSON like {{\"cluster\": {{\"worker\": "
        f"[\"host:port\", ...]}}, \"task\": {{\"type\": \"worker\", "
        f"\"index\": 0}}}}; got {raw!r} ({e!r}).") from e
  if task.get("type") != "worker" or not 0 <= index < len(workers):
    raise errors.UserError(
        f"TF_CONFIG task must be {{\"type\": \"worker\", \"index\": i}} with "
        f"0 <= i < {len(workers)} workers; got {task!r}.")
  return cluster, task


#: Where `multi_worker_strategy` keeps the barrier's timeout on the strategy.
_TIMEOUT_ATTRIBUTE = "_l2t_collective_timeout_s"


def multi_worker_strategy(collective_timeout_s):
  """MultiWorkerMirroredStrategy over TF_CONFIG, RING, untimed collectives.

  Args:
    collective_timeout_s: the timeout of `wait_for_peers` (seconds > 0).
  Returns:
    The strategy.
  """
  if collective_timeout_s is None or float(collective_timeout_s) <= 0:
    raise errors.UserError(
        f"get_strategy.collective_timeout_s must be > 0 seconds (a dead or "
        f"stalled worker would otherwise hang the others), got "
        f"{collective_timeout_s!r}.")
  cluster_from_env()
  ring = tf.distribute.experimental.CommunicationImplementation.RING
  options = tf.distribute.experimental.CommunicationOptions(
      implementation=ring)  # No timeout_seconds: see the module docstring.
  try:
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=options)
  except RuntimeError as e:
    raise RuntimeError(
        "MultiWorkerMirroredStrategy must be created before any other "
        f"TensorFlow op: {e}") from e
  setattr(strategy, _TIMEOUT_ATTRIBUTE, float(collective_timeout_s))
  return strategy


def wait_for_peers(strategy, barrier_id):
  """Waits (at most the timeout) until every worker called this with the id.

  A no-op unless `strategy` came from `multi_worker_strategy`. Every worker
  must pass the same ids in the same order, each id once per job.

  Args:
    strategy: the strategy of `get_strategy`.
    barrier_id: a string naming this barrier, e.g. the round.
  Raises:
    tf.errors.DeadlineExceededError: a worker did not arrive within
      `get_strategy.collective_timeout_s`; the message names it.
    tf.errors.UnavailableError: a worker died or stopped sending heartbeats.
  """
  timeout_s = getattr(strategy, _TIMEOUT_ATTRIBUTE, None)
  if timeout_s is None:
    return
  timeout_ms, context = int(timeout_s * 1000), eager_context.context()
  own = worker_index(strategy)
  workers = len(strategy.cluster_resolver.cluster_spec().as_dict()["worker"])
  for peer in [i for i in range(workers) if i != own]:
    # A dead peer refuses the connection at once (the barrier would wait for
    # the heartbeat timeout).
    context.check_collective_ops_peer_health(
        f"/job:worker/replica:0/task:{peer}", timeout_ms)
  try:
    context.wait_at_barrier(f"l2t/{barrier_id}", timeout_ms)
  except tf.errors.InternalError as e:  # A peer's heartbeats stopped.
    raise tf.errors.UnavailableError(None, None, str(e)) from e


def is_chief(strategy):
  """True unless `strategy` is multi-worker and this is not worker 0."""
  return bool(strategy.extended.should_checkpoint)


def worker_index(strategy):
  """This worker's index in the cluster (0 without a cluster)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or resolver.task_id is None:
    return 0
  return int(resolver.task_id)


def is_multi_worker(strategy):
  """True for a strategy spanning several worker processes."""
  return bool(getattr(strategy.extended, "_in_multi_worker_mode",
                      lambda: False)())


# What a collective op or `wait_for_peers` raises when a peer died or stopped
# (Unavailable: socket closed, or heartbeats stopped; Cancelled/Aborted once
# the collectives are aborted) or stalled (DeadlineExceeded after
# collective_timeout_s at the barrier).
COLLECTIVE_ERRORS = (tf.errors.UnavailableError,
                     tf.errors.DeadlineExceededError,
                     tf.errors.CancelledError, tf.errors.AbortedError)


def _peers_named(message, own_index):
  """Worker indices other than ours that a TensorFlow error message names."""
  found = {int(i) for i in re.findall(r"/job:worker/replica:\d+/task:(\d+)",
                                      message)}
  return sorted(found - {own_index})


class WorkerLost(RuntimeError):
  """A collective op failed: another worker died or stalled."""

  def __init__(self, error, strategy, checkpoint):
    index = worker_index(strategy)
    peers = _peers_named(str(error), index)
    who = (f"worker {', '.join(map(str, peers))}" if peers else
           "another worker")
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(error))
    first_line = (message.strip().splitlines() or [""])[0][:300]
    super().__init__(
        f"worker {index}: lost contact with {who}: a collective or barrier "
        f"failed ({type(error).__name__}: {first_line}). A worker died, "
        f"stopped, or reached the next round more than "
        f"get_strategy.collective_timeout_s after this one. Nothing "
        f"checkpointed is lost (last checkpoint: "
        f"{checkpoint or 'none yet'}); run the same command again on every "
        f"worker to resume.")
    self.worker, self.peers = index, peers


def check_same_on_all_workers(strategy, variable, what):
  """Raises UserError on every worker unless `variable` agrees on all."""
  def replica_fn():
    x = tf.cast(variable, tf.float64)
    return tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.MEAN, tf.stack([x, x * x]))
  mean, mean_square = strategy.experimental_local_results(
      strategy.run(tf.function(replica_fn)))[0].numpy()
  if mean_square - mean * mean > 1e-6:
    raise errors.UserError(
        f"worker {worker_index(strategy)}: the workers disagree on {what}: "
        f"this worker has {float(variable)}, the mean over workers is "
        f"{mean}.")
