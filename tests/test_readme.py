"""The README's commands run as written: every training command parses and resolves (checked
with --print_config, which trains nothing), and every other module it names exists and answers
--help without a traceback."""

import json
import os
import re
import shlex

import pytest

from tests.conftest import REPO, run_cases, run_module


def _commands() -> list[str]:
  """The `python -m ...` commands of the README's shell code blocks, continuations joined."""
  with open(os.path.join(REPO, "README.md")) as f:
    lines = f.read().splitlines()
  blocks, current, lang = [], None, ""
  for line in lines:
    if line.startswith("```"):
      if current is None:
        current, lang = [], line[3:].strip()
      else:
        if lang in ("", "bash", "sh"):
          blocks.append("\n".join(current))
        current = None
    elif current is not None:
      current.append(line)
  out = []
  for block in blocks:
    for line in block.replace("\\\n", " ").splitlines():
      line = line.split(" #", 1)[0].strip()
      m = re.search(r"python -m (\S+.*)$", line)
      if m and "..." not in line:
        out.append(m.group(1))
  return out


COMMANDS = _commands()
TRAIN = [c for c in COMMANDS if c.startswith("experiments.train")]
MODULES = sorted({c.split()[0] for c in COMMANDS if not c.startswith(("experiments.train",
                                                                      "pytest"))})


def test_the_readme_has_commands_to_check():
  assert len(TRAIN) >= 5 and "scripts.evaluate" in MODULES and "scripts.sweep" in MODULES


def test_training_commands_resolve():
  cases = [[a for a in shlex.split(c)[1:] if a != "&&"] + ["--print_config"] for c in TRAIN]
  for command, proc in zip(TRAIN, run_cases("experiments.train", cases)):
    assert proc.returncode == 0, (command, proc.stderr[-1500:])
    assert "steps" in json.loads(proc.stdout), command


@pytest.mark.parametrize("module", MODULES)
def test_named_module_answers_help(module):
  proc = run_module(module, "--help", timeout=120)
  assert "Traceback" not in proc.stderr and "No module named" not in proc.stderr, proc.stderr
  assert "--" in proc.stdout, module
