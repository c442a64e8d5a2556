"""One run per model_dir: an OS file lock held while the run lives.

`hold(model_dir)` takes an exclusive `fcntl.flock` on `<model_dir>/.lock`
and writes this process's id and host into it. The OS drops the lock when
the process ends, however it ends (a crashed or killed run leaves nothing
stuck). A second run on the same directory gets a `Locked` error at once,
naming the process that holds it. The lock is a local file (Python's
`open`, not `tf.io.gfile`): `train_eval` refuses a model_dir that is a URL
(`checks.run_directory`); a mounted directory (NFS, gcsfuse) is local.
"""
import contextlib
import fcntl
import os
import socket

from l2t_tf import errors

FILE_NAME = ".lock"


class Locked(errors.UserError):
  """Another process runs in this model_dir."""


def _holder(lock_path):
  try:
    with open(lock_path) as f:
      return f.read().strip() or "unknown"
  except OSError:
    return "unknown"


@contextlib.contextmanager
def hold(model_dir):
  """Holds the lock of `model_dir` for the duration of the block.

  Raises:
    Locked: another live process holds it.
  """
  lock_path = os.path.join(model_dir, FILE_NAME)
  handle = open(lock_path, "a+")
  try:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise Locked(
          f"train_eval.model_dir {model_dir!r} is in use by another run "
          f"({_holder(lock_path)}); wait for it to finish, stop it, or use "
          f"another train_eval.model_dir.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    yield
  finally:
    handle.close()  # Releases the lock.
