"""Faults a long run meets: a corrupted checkpoint, a second trainer, a kill before the first
checkpoint, counts past int32. Each must end in one clear line or a clean fallback, with
nothing the user had lost."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from aegan_jax import train
from aegan_jax.errors import UserError
from tests.conftest import run_module


def _largest_file(directory):
  files = [os.path.join(root, f) for root, _, names in os.walk(directory) for f in names]
  return max(files, key=os.path.getsize)


def _flip_byte(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([byte[0] ^ 0xFF]))


def test_flipped_byte_falls_back_to_the_previous_checkpoint(tiny, tmp_path, caplog):
  config = tiny(checkpoint_every=10)
  straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
  workdir = tmp_path / "flipped"
  train.train_and_evaluate(config, str(workdir))
  _flip_byte(_largest_file(workdir / "checkpoints" / "40" / "state"))

  from aegan_jax import checkpoint
  with pytest.raises(checkpoint.CorruptCheckpoint, match="step 40 .* fails verification"):
    train.load_for_sampling(str(workdir))  # sampling and evaluation refuse it too

  caplog.set_level("WARNING")
  resumed = train.train_and_evaluate(config, str(workdir))  # finished run, now 10 steps short
  warnings = [r.getMessage() for r in caplog.records if "fails verification" in r.getMessage()]
  assert len(warnings) == 1 and "trying the previous checkpoint" in warnings[0]
  assert os.path.isdir(workdir / "corrupt_checkpoints" / "40")  # kept, out of the way
  for a, b in zip(jax.tree.leaves(jax.tree.map(np.asarray, straight.params)),
                  jax.tree.leaves(jax.tree.map(np.asarray, resumed.params))):
    np.testing.assert_array_equal(a, b)
  steps = [json.loads(l)["step"] for l in open(workdir / "metrics.jsonl")]
  rows = [(json.loads(l)["step"], json.loads(l)["phase"]) for l in open(workdir / "metrics.jsonl")]
  assert len(rows) == len(set(rows)) and max(steps) == 40  # each step once


# A stand-in for a running trainer: takes the same kernel lock and PID file, then waits.
_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
open(os.path.join(sys.argv[1], "trainer.pid"), "w").write(str(os.getpid()))
print("locked", flush=True)
time.sleep(600)
"""


def test_second_trainer_on_a_workdir_is_refused_naming_the_first(tiny, tmp_path):
  workdir = tmp_path / "busy"
  os.makedirs(workdir)
  first = subprocess.Popen([sys.executable, "-c", _HOLDER, str(workdir)],
                           stdout=subprocess.PIPE, text=True)
  config = tiny(steps=20, strategy="gan", mlp_hidden=(32,), log_every=10)
  try:
    assert first.stdout.readline().strip() == "locked"
    with pytest.raises(UserError, match=f"in use by another trainer \\(PID {first.pid}\\)"):
      train.train_and_evaluate(config, str(workdir))
    assert os.listdir(workdir) == ["trainer.pid"]  # nothing written
  finally:
    first.kill()
    first.wait()
  # Killed with -9: the kernel dropped its lock (its PID file stays), and the workdir trains.
  state = train.train_and_evaluate(config, str(workdir))
  assert int(state.step) == 20
  assert not (workdir / "trainer.pid").exists()


def test_rows_of_a_run_killed_before_its_first_checkpoint_are_dropped(tiny, tmp_path):
  workdir = tmp_path / "w"
  os.makedirs(workdir)
  with open(workdir / "metrics.jsonl", "w") as f:  # what a killed run left: no checkpoint
    for step in (10, 20):
      f.write(json.dumps({"step": step, "phase": "pretrain", "recon_loss": 1.0}) + "\n")
  train.train_and_evaluate(tiny(), str(workdir))
  rows = [(json.loads(l)["step"], json.loads(l)["phase"]) for l in open(workdir / "metrics.jsonl")]
  assert len(rows) == len(set(rows))
  assert all(json.loads(l).get("recon_loss") != 1.0 for l in open(workdir / "metrics.jsonl"))


def test_counts_past_int32_are_refused_before_anything_changes(tmp_path, data_dir):
  from aegan_jax import config as config_lib
  from aegan_jax.config import Config
  with pytest.raises(UserError, match="--pretrain_steps=3000000000 is past what the program"):
    config_lib.validate(Config(pretrain_steps=3_000_000_000))
  with pytest.raises(UserError, match="--pretrain_steps \\+ --steps = 2,147,486,000 steps"):
    config_lib.validate(Config(steps=2_147_483_000))
  workdir = tmp_path / "finished"
  os.makedirs(workdir)
  (workdir / "summary.json").write_text("{}")
  proc = run_module("experiments.train", f"--workdir={workdir}", "--steps=99999999999999999999",
                    data_dir=data_dir, timeout=120)
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-2000:]
  assert "--steps=99999999999999999999 is past what the program" in errors[0]
  assert os.listdir(workdir) == ["summary.json"]  # the finished run's summary survives
