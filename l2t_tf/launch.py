r"""Runs K local workers of `l2t_tf.main` with MultiWorkerMirroredStrategy.

  python -m l2t_tf.launch --num_workers=2 -- \
      --gin_bindings="train_eval.model_dir = 'runs/digits_2w'"

Everything after `--` goes unchanged to every worker, which runs
`python -m l2t_tf.main <flags>` with its own TF_CONFIG (a cluster of free
127.0.0.1 ports) and the bindings `get_strategy.name = 'multi_worker'` and
`get_strategy.collective_timeout_s`. Their output is prefixed `[worker i]`;
the last stdout line is the chief's JSON results, as for `l2t_tf.main`.

Ctrl-C (or SIGTERM) is passed on to every worker. If a worker dies or is
stopped, the others' collectives fail within TensorFlow's heartbeat timeout
(~10 s); if it stalls alive, the others fail at the barrier before the next
round after the collective timeout (see `l2t_tf.strategy`). They exit
naming the lost worker; the launcher then stops whatever still runs, names
the failed worker and exits non-zero. Checkpoints already written are kept:
running the same command again resumes. On a real cluster run `l2t_tf.main`
on every host instead, with TF_CONFIG set per host (see docs/distributed.md).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import app
from absl import flags

from l2t_tf import strict_json

flags.DEFINE_integer("num_workers", 2, "Local worker processes to start.")
flags.DEFINE_float("collective_timeout_s", 60.0,
                   "Seconds a worker waits for its peers at the barrier "
                   "before every round (a stalled peer; dead or stopped "
                   "peers are caught by heartbeats).")
flags.DEFINE_float("stop_grace_s", None,
                   "Seconds the other workers get to stop by themselves after "
                   "one failed (default: collective_timeout_s + 15).")
flags.DEFINE_string("worker_module", "l2t_tf.main",
                    "Module each worker runs with `python -m`.")
FLAGS = flags.FLAGS

POLL_S = 0.2


def free_ports(count):
  """`count` distinct free TCP ports on 127.0.0.1."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(("127.0.0.1", 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def tf_configs(num_workers):
  """One TF_CONFIG JSON string per worker of a localhost cluster."""
  workers = [f"127.0.0.1:{port}" for port in free_ports(num_workers)]
  return [strict_json.dumps({"cluster": {"worker": workers},
                             "task": {"type": "worker", "index": i}})
          for i in range(num_workers)]


def _describe(code):
  if code < 0:
    return f"was killed by {signal.Signals(-code).name}"
  return f"exited with code {code}"


class Worker:
  """One worker process whose output is copied with a `[worker i]` prefix."""

  def __init__(self, index, command, tf_config):
    self.index = index
    self.last_stdout_line = None
    env = dict(os.environ, TF_CONFIG=tf_config)
    # A session of its own: the launcher decides which signal reaches it.
    self.process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, bufsize=1, start_new_session=True)
    self.readers = [self._copy(self.process.stdout, sys.stdout, True),
                    self._copy(self.process.stderr, sys.stderr, False)]

  def _copy(self, source, sink, remember):
    def run():
      for line in iter(source.readline, ""):
        if remember and line.strip():
          self.last_stdout_line = line.strip()
        sink.write(f"[worker {self.index}] {line}")
        sink.flush()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread

  def poll(self):
    return self.process.poll()

  def signal(self, signum):
    if self.process.poll() is None:
      try:
        os.kill(self.process.pid, signum)
      except ProcessLookupError:
        pass

  def finish_output(self):
    for thread in self.readers:
      thread.join(timeout=5)


def _say(message):
  sys.stderr.write(f"launch: {message}\n")
  sys.stderr.flush()


def _wait_all(workers, seconds):
  """Waits up to `seconds` for every worker to exit; returns those running."""
  deadline = time.monotonic() + seconds
  while time.monotonic() < deadline:
    running = [w for w in workers if w.poll() is None]
    if not running:
      return []
    time.sleep(POLL_S)
  return [w for w in workers if w.poll() is None]


def _kill(workers, why):
  for w in workers:
    _say(f"worker {w.index} (pid {w.process.pid}) {why}; killing it.")
    w.signal(signal.SIGKILL)
    w.process.wait()


def _after_failure(workers, failed, grace_s):
  """The job is lost: give the others `grace_s` to stop, then kill them."""
  _say(f"worker {failed.index} (pid {failed.process.pid}) "
       f"{_describe(failed.poll())}; the other workers stop at their next "
       f"collective or barrier (heartbeats or the collective timeout).")
  stalled = _wait_all(workers, grace_s)
  _kill(stalled, f"is still running {grace_s:.0f} s after worker "
        f"{failed.index} failed: stalled")
  fates = [f"worker {failed.index} {_describe(failed.poll())}"]
  fates += [f"worker {w.index} stalled (killed)" for w in stalled]
  _say(f"job failed: {'; '.join(fates)}. Checkpoints already written are "
       "kept; run the same command again to resume.")
  return failed.poll() if failed.poll() > 0 else 1


def _interrupt(workers, grace_s):
  """Ctrl-C / SIGTERM: pass SIGINT on, wait, then kill what is left."""
  _say("interrupted: stopping the workers.")
  for w in workers:
    w.signal(signal.SIGINT)
  try:
    _kill(_wait_all(workers, grace_s), "ignored the interrupt")
  except KeyboardInterrupt:
    _kill([w for w in workers if w.poll() is None], "was interrupted twice")
  return 130


def supervise(workers, grace_s):
  """Waits for the workers; returns the launcher's exit code."""
  while True:
    codes = [w.poll() for w in workers]
    failed = [w for w, c in zip(workers, codes) if c not in (None, 0)]
    if failed:
      return _after_failure(workers, failed[0], grace_s)
    if all(c == 0 for c in codes):
      return 0
    time.sleep(POLL_S)


def launch(num_workers, worker_flags, collective_timeout_s, grace_s=None,
           worker_module="l2t_tf.main"):
  """Runs the workers to the end; returns the exit code for the launcher."""
  if num_workers < 1:
    raise app.UsageError(f"--num_workers must be >= 1, got {num_workers}.")
  if collective_timeout_s <= 0:
    raise app.UsageError("--collective_timeout_s must be > 0, got "
                         f"{collective_timeout_s}.")
  grace_s = collective_timeout_s + 15 if grace_s is None else grace_s
  command = [sys.executable, "-m", worker_module] + list(worker_flags) + [
      "--gin_bindings=get_strategy.name = 'multi_worker'",
      f"--gin_bindings=get_strategy.collective_timeout_s = "
      f"{float(collective_timeout_s)}"]
  workers = []
  previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
  try:
    for i, tf_config in enumerate(tf_configs(num_workers)):
      workers.append(Worker(i, command, tf_config))
      _say(f"worker {i}: pid {workers[-1].process.pid}, "
           f"{json.loads(tf_config)['cluster']['worker'][i]}")
    code = supervise(workers, grace_s)
  except KeyboardInterrupt:
    code = _interrupt(workers, grace_s)
  finally:
    signal.signal(signal.SIGTERM, previous)
    _kill([w for w in workers if w.poll() is None], "outlived the launcher")
  for w in workers:
    w.finish_output()
  if code == 0 and workers[0].last_stdout_line:
    print(workers[0].last_stdout_line)  # The chief's results, unprefixed.
  return code


def _raise_keyboard_interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt


def main(argv):
  sys.exit(launch(FLAGS.num_workers, argv[1:], FLAGS.collective_timeout_s,
                  FLAGS.stop_grace_s, FLAGS.worker_module))


if __name__ == "__main__":
  app.run(main)
