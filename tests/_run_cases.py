"""`python -m tests._run_cases MODULE JSON`: several command lines of one entry point, run one
after another in this one interpreter, as `python -m MODULE ARGS` would run each.

The refusal tests try a dozen bad command lines each; a fresh interpreter per line costs about
3 s of imports, most of a refusal's time. Each line here gets fresh flags (absl's parsed values
are reset) and its own stdout/stderr, captured at the file-descriptor level so that whatever the
process would print (absl logging, warnings, a traceback) is seen. Prints one JSON line: per
command line, {"returncode", "stdout", "stderr"}.
"""

import importlib
import json
import os
import runpy
import sys
import tempfile
import traceback


def _drop_flags(names: set[str], drop) -> None:
  """Undefines those of the flags `names` whose defining module's name `drop` accepts."""
  from absl import flags
  for name in names:
    if drop(flags.FLAGS.find_module_defining_flag(name)):
      delattr(flags.FLAGS, name)


def _run_one(module: str, args: list[str]) -> dict:
  from absl import flags
  defined, imported = set(flags.FLAGS), set(sys.modules)
  if flags.FLAGS.is_parsed():
    flags.FLAGS.unparse_flags()
  sys.argv = [module, *args]
  outputs = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
  saved = [os.dup(1), os.dup(2)]
  sys.stdout.flush()
  sys.stderr.flush()
  os.dup2(outputs[0].fileno(), 1)
  os.dup2(outputs[1].fileno(), 2)
  code = 0
  try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  except BaseException:  # noqa: BLE001 - a real process would print it and exit 1
    traceback.print_exc()
    code = 1
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    for fd in saved:
      os.close(fd)
    # The next case defines again the flags of the module run as __main__ (absl names it by
    # its path) and those an entry point defines when run: drop them. Those of libraries first
    # imported during the case stay, as their modules stay imported.
    _drop_flags(set(flags.FLAGS) - defined, lambda where: where in imported
                or where not in sys.modules)
  text = []
  for f in outputs:
    f.seek(0)
    text.append(f.read().decode(errors="replace"))
    f.close()
  return {"returncode": code, "stdout": text[0], "stderr": text[1]}


if __name__ == "__main__":
  module, cases = sys.argv[1], json.loads(sys.argv[2])
  # What the module imports stays imported; runpy runs the module itself anew each case, so
  # the flags it defines on import (a script's own) are dropped with it.
  from absl import flags
  before = set(flags.FLAGS)
  importlib.import_module(module)
  del sys.modules[module]
  _drop_flags(set(flags.FLAGS) - before, lambda where: where == module)
  results = [_run_one(module, args) for args in cases]
  print(json.dumps(results))
