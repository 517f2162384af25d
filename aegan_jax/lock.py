"""One trainer per workdir: an exclusive flock on the workdir itself, held while training.

Two trainers writing one workdir corrupt each other's checkpoints and metrics, so the second
is refused at once, naming the first one's PID. The lock is the kernel's (flock on the
directory's descriptor): it goes away with its process, so a trainer killed with -9 leaves no
stale lock behind. The holder's PID is written beside it (`trainer.pid`) for that message only.
"""

import errno
import fcntl
import os

from aegan_jax.errors import UserError

PID_FILE = "trainer.pid"


class WorkdirLock:
  """Context manager: holds the lock on `workdir` (created if missing) from enter to exit."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.workdir = os.path.abspath(workdir)
    self.enabled = enabled  # multi-process runs: process 0 alone writes, and locks
    self._fd = None
    self._created = False

  def __enter__(self) -> "WorkdirLock":
    if not self.enabled:
      return self
    self._created = not os.path.exists(self.workdir)
    os.makedirs(self.workdir, exist_ok=True)
    self._fd = os.open(self.workdir, os.O_RDONLY)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(self._fd)
      self._fd = None
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise
      raise UserError(f"{self.workdir} is in use by another trainer (PID {self._holder()}); "
                      f"left untouched: wait for it to finish, stop it, or use another "
                      f"--workdir") from None
    with open(os.path.join(self.workdir, PID_FILE), "w") as f:
      f.write(f"{os.getpid()}\n")
    return self

  def _holder(self) -> str:
    try:
      with open(os.path.join(self.workdir, PID_FILE)) as f:
        return f.read().strip() or "unknown"
    except OSError:
      return "unknown"

  def __exit__(self, exc_type, exc, tb) -> None:
    if self._fd is None:
      return
    try:
      os.remove(os.path.join(self.workdir, PID_FILE))
    except OSError:
      pass
    os.close(self._fd)  # releases the flock
    self._fd = None
    # A run refused before it wrote anything leaves no empty workdir behind.
    if self._created and exc_type is not None and not os.listdir(self.workdir):
      os.rmdir(self.workdir)
