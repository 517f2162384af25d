"""Kill -9 and resume gives bit-identical parameters; SIGTERM saves first; samples export."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from tests.conftest import REPO, run_module

FLAGS = ["--pretrain_steps=300", "--steps=700", "--batch_size=32", "--log_every=50",
         "--checkpoint_every=100", "--sample_every=500", "--mlp_hidden=64", "--eval_every=0"]


def _params(workdir, step):
  state = ocp.StandardCheckpointer().restore(
      os.path.join(workdir, "checkpoints", str(step), "state"))
  return state


def _start(workdir, data_dir, *extra):
  env = {**os.environ, "TFDS_DATA_DIR": data_dir, "JAX_PLATFORMS": "cpu"}
  return subprocess.Popen([sys.executable, "-m", "experiments.train", f"--workdir={workdir}",
                           *FLAGS, *extra], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(workdir, step, proc, timeout=180):
  path = os.path.join(workdir, "checkpoints", str(step))
  deadline = time.monotonic() + timeout
  while not os.path.isdir(path):
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    assert time.monotonic() < deadline
    time.sleep(0.02)


def test_sigkill_and_resume_is_bit_identical(data_dir, tmp_path):
  straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
  proc = run_module("experiments.train", f"--workdir={straight}", *FLAGS, data_dir=data_dir)
  assert proc.returncode == 0, proc.stderr[-3000:]

  victim = _start(killed, data_dir)
  _wait_for_checkpoint(killed, 400, victim)  # past the pretrain -> gan transition
  victim.send_signal(signal.SIGKILL)
  victim.wait()
  latest = max(int(s) for s in os.listdir(os.path.join(killed, "checkpoints")) if s.isdigit())
  assert latest < 1000, "the run finished before it was killed; the test proves nothing"
  proc = run_module("experiments.train", f"--workdir={killed}", *FLAGS, data_dir=data_dir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "Resumed from" in proc.stderr

  a, b = _params(straight, 1000), _params(killed, 1000)
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert jax.tree.structure(a) == jax.tree.structure(b) and len(leaves_a) > 10
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  # The resumed run's log has each step once, in order.
  records = [json.loads(l) for l in open(os.path.join(killed, "metrics.jsonl"))]
  keys = [(r["step"], r["phase"]) for r in records]
  assert [k[0] for k in keys] == sorted(k[0] for k in keys) and len(keys) == len(set(keys))
  assert records[-1]["step"] == 1000

  # Sample export from the finished run.
  out = str(tmp_path / "samples.npy")
  proc = run_module("scripts.sample", f"--workdir={straight}", "--num=37", f"--out={out}",
                    data_dir=data_dir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  samples = np.load(out)
  assert samples.shape == (37, 28, 28, 1) and samples.dtype == np.float32
  assert samples.min() >= 0 and samples.max() <= 1 and samples.std() > 0.05


def test_sigterm_saves_a_checkpoint_before_exiting(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  proc = _start(workdir, data_dir, "--steps=1000000")
  _wait_for_checkpoint(workdir, 200, proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 143, err[-3000:]
  line = [l for l in err.splitlines() if "SIGTERM: saved checkpoint at step" in l]
  assert line, err[-3000:]
  step = int(line[0].split("at step ")[1].split(";")[0])
  assert os.path.isdir(os.path.join(workdir, "checkpoints", str(step))), (
      os.listdir(os.path.join(workdir, "checkpoints")), err[-3000:])
  assert step > 200


def test_sample_export_without_checkpoint_is_one_line(tmp_path, data_dir):
  proc = run_module("scripts.sample", f"--workdir={tmp_path}", "--out=x.npy", data_dir=data_dir)
  assert proc.returncode == 2 and "holds no checkpoints" in proc.stderr
  assert "Traceback" not in proc.stderr
