"""What every entry point shares: user errors as one line on stderr, exit status 2; the host's
CPU speed-ups switched on (aegan_jax/cpu)."""

import sys
from typing import Callable

import logging as py_logging

from absl import app
from absl import logging

from aegan_jax import cpu, storage
from aegan_jax.errors import UserError  # noqa: F401 (re-exported for entry points)


def grouped_flag_help(choices: dict[str, list[str]], extra: dict[str, list[str]]) -> str:
  """The experiment's flags by concern, with defaults and, for choice flags, their values:
  Config's groups (config.flag_groups), then `extra` (title -> flag names of the entry point)."""
  import dataclasses
  import textwrap
  from absl import flags
  from aegan_jax import config as config_lib
  fields = {f.name: f for f in dataclasses.fields(config_lib.Config)}

  def shown(value) -> str:
    if isinstance(value, bool):
      return str(value).lower()
    if isinstance(value, (tuple, list)):
      return ",".join(map(str, value))
    return repr(value) if value == "" else str(value)

  out = []
  groups = [(t, [(n, fields[n].default, fields[n].metadata["help"]) for n in names])
            for t, names in config_lib.flag_groups()]
  groups += [(t, [(n, flags.FLAGS[n].default, flags.FLAGS[n].help) for n in names])
             for t, names in extra.items()]
  for title, entries in groups:
    out.append(f"\n{title}:")
    for name, default, help_text in entries:
      head = f"  --{name}={shown(default)}"
      if name in choices:
        head += f"  (one of: {', '.join(choices[name])})"
      out.append(head)
      out.extend(textwrap.wrap(help_text, 96, initial_indent="      ",
                               subsequent_indent="      "))
  return "\n".join(out) + "\n"


def run(main: Callable[[list[str]], None], command: str = "__main__") -> None:
  """absl's app.run, with UserError printed as `error: ...` and no traceback.

  `command`: the module that defines main and its flags. absl's --help prints the __main__
  module's docstring and flags; run through a shim (`python -m experiments.train`) or a console
  script (`aegan-train`), __main__ is not that module, so its text and flags are lent to it."""
  if command != "__main__":
    from absl import flags
    module = sys.modules[command]
    sys.modules["__main__"].__doc__ = (
        (module.__doc__ or "") + "\n" + flags.FLAGS.module_help(command))

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
