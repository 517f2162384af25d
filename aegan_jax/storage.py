"""A full disk (or quota) stops a run with one line, not a wall of tracebacks.

Checkpoints are written by orbax's background threads through tensorstore; when the disk fills,
the failure reaches the training loop at the next save as a ValueError whose text carries the
OS error (`No space left on device [os_error_code='28']`), while the threads print dozens of
secondary tracebacks (a closed event loop, coroutines never awaited) on their way down. Here:
recognising that failure in an exception chain, the one line that replaces it, and hooks that
keep the secondary noise off stderr.
"""

import errno
import os
import re
import shutil
import sys
import threading
from typing import Optional

from aegan_jax.errors import UserError

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NO_SPACE_WORDS = ("No space left on device", "Disk quota exceeded",
                   f"os_error_code='{errno.ENOSPC}'", f"os_error_code='{errno.EDQUOT}'")


class OutOfSpace(UserError):
  """A write failed because the filesystem is full."""


def out_of_space(error: BaseException) -> Optional[BaseException]:
  """The exception in `error`'s chain that says the disk is full, or None."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
      return error
    if any(w in str(error) for w in _NO_SPACE_WORDS):
      return error
    error = error.__cause__ or error.__context__
  return None


def _quoted_path(text: str) -> Optional[str]:
  """The checkpoint folder (or else the file) named in a tensorstore message, if any."""
  match = re.search(r'"(/[^"]+)"', text)
  if not match:
    return None
  path = match.group(1)
  inside = re.match(r"(.*/checkpoints/[^/]+)", path)
  return inside.group(1) if inside else path


def _megabytes(n: int) -> str:
  return f"{n / 2**20:.1f} MB"


def out_of_space_error(error: BaseException, workdir: str,
                       last_good: Optional[int]) -> OutOfSpace:
  """The one line: what failed, where, the free space, what is kept, how to go on."""
  path = getattr(error, "filename", None) or _quoted_path(str(error)) or workdir
  try:
    usage = shutil.disk_usage(workdir)
    free = f"{_megabytes(usage.free)} free of {_megabytes(usage.total)}"
  except OSError:
    free = "free space unknown"
  kept = (f"the last good checkpoint is step {last_good} in {os.path.join(workdir, 'checkpoints')}"
          if last_good is not None else "no checkpoint was saved before it")
  return OutOfSpace(f"no space left on the device writing {path} ({free}); the run stopped "
                    f"and {kept}, nothing saved was touched: free some space and rerun the same "
                    f"command to resume")


class quiet_background_failures:
  """While active, exceptions that background threads print on their own (unhandled in a
  thread, or 'ignored' in a finaliser) are not printed when they come from a full disk or
  from the event loop a failed write closed; the training loop reports the failure itself.
  Left on a full disk, it stays in force: those threads may fail after the run has stopped."""

  def __enter__(self):
    self._thread_hook, self._unraisable_hook = threading.excepthook, sys.unraisablehook
    self._except_hook = sys.excepthook

    def noise(exc) -> bool:
      return exc is not None and (out_of_space(exc) is not None
                                  or (isinstance(exc, RuntimeError)
                                      and str(exc) == "Event loop is closed"))

    def thread_hook(args):
      if not noise(args.exc_value):
        self._thread_hook(args)

    def unraisable_hook(unraisable):
      if not noise(unraisable.exc_value):
        self._unraisable_hook(unraisable)

    def except_hook(kind, value, tb):
      if not noise(value):
        self._except_hook(kind, value, tb)

    threading.excepthook, sys.unraisablehook, sys.excepthook = (thread_hook, unraisable_hook,
                                                                except_hook)
    return self

  def __exit__(self, kind, value, tb):
    if isinstance(value, OutOfSpace) or (value is not None and out_of_space(value) is not None):
      # The run stopped on a full disk, but threads it started (TensorBoard's event writer,
      # orbax's) can still be failing on it: their noise stays filtered (nothing else is).
      return False
    threading.excepthook, sys.unraisablehook = self._thread_hook, self._unraisable_hook
    sys.excepthook = self._except_hook
    return False
