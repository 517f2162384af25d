"""What every entry point shares: user errors as one line on stderr, exit status 2; the host's
CPU speed-ups switched on (aegan_jax/cpu)."""

import sys
from typing import Callable

import logging as py_logging

from absl import app
from absl import logging

from aegan_jax import cpu, storage
from aegan_jax.errors import UserError  # noqa: F401 (re-exported for entry points)


def run(main: Callable[[list[str]], None]) -> None:
  """absl's app.run, with UserError printed as `error: ...` and no traceback."""
  def guarded(argv):
    cpu.enable()  # before JAX allocates anything
    quiet_libraries()
    try:
      main(argv)
    except UserError as e:
      sys.stderr.write(f"error: {e}\n")
      sys.stderr.flush()
      sys.exit(2)
  app.run(guarded)


class _DropLibraryChatter(py_logging.Filter):
  """Keeps orbax's per-save INFO lines (dozens a checkpoint) off the console, and its reports of
  a full disk (the trainer says it in one line); other warnings stay."""

  def filter(self, record: py_logging.LogRecord) -> bool:
    if "/orbax/" not in record.pathname:
      return True
    if record.exc_info and storage.out_of_space(record.exc_info[1]) is not None:
      return False  # a full disk: the trainer reports it in one line
    if storage.out_of_space(Exception(record.getMessage())) is not None:
      return False
    return record.levelno >= py_logging.WARNING


def quiet_libraries() -> None:
  logging.get_absl_handler().addFilter(_DropLibraryChatter())
