"""Faults a long run meets: a corrupted checkpoint, a second trainer, a kill before the first
checkpoint, counts past int32. Each must end in one clear line or a clean fallback, with
nothing the user had lost."""

import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from aegan_jax import train
from aegan_jax.errors import UserError
from tests.conftest import REPO, run_module


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


def test_second_trainer_on_a_workdir_is_refused_naming_the_first(tiny, tmp_path, data_dir):
  workdir = tmp_path / "busy"
  first = subprocess.Popen(
      [sys.executable, "-m", "experiments.train", f"--workdir={workdir}", "--steps=100000",
       "--strategy=gan", "--mlp_hidden=32", "--eval_every=0", "--log_every=10"],
      cwd=REPO, env={**os.environ, "TFDS_DATA_DIR": data_dir, "JAX_PLATFORMS": "cpu"},
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 120
    while not (workdir / "metrics.jsonl").exists() and time.time() < deadline:
      time.sleep(0.5)
    assert (workdir / "metrics.jsonl").exists()
    with pytest.raises(UserError, match=f"in use by another trainer \\(PID {first.pid}\\)"):
      train.train_and_evaluate(tiny(steps=100000, strategy="gan", mlp_hidden=(32,)),
                               str(workdir))
    assert first.poll() is None  # the first one trains on
  finally:
    first.kill()
    first.wait()
  # Killed with -9: the kernel dropped its lock (its PID file stays), and the workdir resumes
  # (the same flags but for the step count: it is run control).
  assert (workdir / "trainer.pid").exists()
  state = train.train_and_evaluate(tiny(steps=20, strategy="gan", mlp_hidden=(32,),
                                        eval_every=0, log_every=10), str(workdir))
  assert int(state.step) >= 20
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


@pytest.mark.parametrize("flag,message", [
    ("--pretrain_steps=3000000000", "--pretrain_steps=3000000000 is past what the program can count"),
    ("--steps=99999999999999999999", "--steps=99999999999999999999 is past what the program"),
    ("--steps=2147483000", "--pretrain_steps + --steps = 2,147,486,000 steps in all"),
])
def test_counts_past_int32_are_refused_before_anything_changes(flag, message, tmp_path, data_dir):
  workdir = tmp_path / "finished"
  os.makedirs(workdir)
  (workdir / "summary.json").write_text("{}")
  proc = run_module("experiments.train", f"--workdir={workdir}", flag, data_dir=data_dir,
                    timeout=120)
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
  assert os.listdir(workdir) == ["summary.json"]
