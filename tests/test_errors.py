"""Every bad input gives one clear line (problem and fix), a non-zero exit, and loses nothing."""

import os

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from aegan_jax import train
from aegan_jax.errors import UserError
from tests.conftest import run_cases, run_module


def _tree_snapshot(root):
  """(path, size, mtime) of every file below root."""
  out = []
  for d, _, files in os.walk(root):
    for f in files:
      st = os.stat(os.path.join(d, f))
      out.append((os.path.relpath(os.path.join(d, f), root), st.st_size, st.st_mtime_ns))
  return sorted(out)


# Each flag alone on the command line, and the line that must refuse it.
BAD_FLAGS = [
    ("--dataset=mnsit", "unknown dataset 'mnsit' for --dataset; choose one of: "),
    ("--strategy=vae", "unknown strategy 'vae' for --strategy; choose one of: aae, ae_pretrain"),
    ("--arch=resnet", "unknown arch 'resnet' for --arch; choose one of: dcgan, mlp"),
    ("--loss=wasserstein", "unknown loss 'wasserstein' for --loss; choose one of: hinge, lsgan, minimax"),
    ("--steps=-1", "--steps must be >= 0, got -1"),
    ("--batch_size=-8", "--batch_size must be a positive integer, got -8"),
    ("--g_lr=0", "--g_lr must be a positive learning rate"),
    ("--ae_lr=-1e-3", "--ae_lr must be a positive learning rate"),
    ("--dataset=mnist", "dataset 'mnist' is not prepared in"),
    ("--dtype=float16", "unknown --dtype 'float16'; choose float32 or bfloat16"),
    ("--conv_impl=cudnn", "unknown --conv_impl 'cudnn'; choose auto, stock or fast"),
    ("--steps_per_call=0", "--steps_per_call must be a positive integer, got 0"),
]


def test_cli_bad_input_is_one_line(tmp_path):
  # All in one interpreter (tests/_run_cases.py): each line is parsed and refused as its own
  # `python -m experiments.train` would, without a dozen interpreter start-ups.
  cases = [[f"--workdir={tmp_path / str(i)}", flag] for i, (flag, _) in enumerate(BAD_FLAGS)]
  procs = run_cases("experiments.train", cases, data_dir=str(tmp_path / "empty_tfds"))
  for i, ((flag, message), proc) in enumerate(zip(BAD_FLAGS, procs)):
    workdir = tmp_path / str(i)
    assert proc.returncode == 2, (flag, proc.stderr[-2000:])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], (flag, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, flag
    if flag == "--dataset=mnist":
      assert "python -m scripts.prepare_data --dataset=mnist" in errors[0]
    assert not (workdir / "checkpoints").exists() or not os.listdir(workdir / "checkpoints")


def test_batch_larger_than_dataset(tiny, tmp_path):
  with pytest.raises(UserError, match="--batch_size=5000 exceeds the 4500 training examples"):
    train.train_and_evaluate(tiny(batch_size=5000), str(tmp_path))


def test_incompatible_workdir_is_refused_and_untouched(tiny, tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny(), workdir)
  before = _tree_snapshot(workdir)
  with pytest.raises(UserError, match=r"holds a checkpoint \(step 40\) of another configuration: "
                                      r"--arch=mlp \(now dcgan\)"):
    train.train_and_evaluate(tiny(arch="dcgan"), workdir)
  with pytest.raises(UserError, match="another configuration: --g_lr"):
    train.train_and_evaluate(tiny(g_lr=1e-3), workdir)
  assert _tree_snapshot(workdir) == before
  # Run-control flags may change: a longer run of the same experiment resumes.
  state = train.train_and_evaluate(tiny(steps=30, log_every=5), workdir)
  assert int(state.step) == 50


def test_corrupted_checkpoint_is_reported_and_kept(tiny, tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny(), workdir)
  state_dir = os.path.join(workdir, "checkpoints", "40", "state")
  data_files = [os.path.join(d, f) for d, _, fs in os.walk(state_dir) for f in fs
                if os.path.getsize(os.path.join(d, f)) > 1000]
  victim = max(data_files, key=os.path.getsize)
  with open(victim, "r+b") as f:
    f.truncate(os.path.getsize(victim) // 2)
  size = os.path.getsize(victim)
  with pytest.raises(UserError, match=r"checkpoint step 40 in .* cannot be read .* left as is"):
    train.train_and_evaluate(tiny(steps=30), workdir)
  assert os.path.getsize(victim) == size


def test_checkpoint_of_another_state_layout_is_reported_and_kept(tiny, tmp_path, monkeypatch):
  # A run saved by a version whose optimizer state was laid out differently (momentum SGD here).
  workdir = str(tmp_path / "run")
  monkeypatch.setattr("aegan_jax.strategies.ae_pretrain.adam",
                      lambda lr, c: optax.sgd(lr, momentum=c.adam_b1))
  train.train_and_evaluate(tiny(), workdir)
  monkeypatch.undo()
  before = _tree_snapshot(workdir)
  with pytest.raises(UserError, match=r"checkpoint step 40 in .* holds a training state of "
                                      r"another layout .* left as is"):
    train.train_and_evaluate(tiny(steps=30), workdir)
  assert _tree_snapshot(workdir) == before


def test_nan_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
  workdir = str(tmp_path / "run")
  with pytest.raises(train.TrainingDiverged,
                     match=r"diverged: .* at step 2\d \(phase gan\); stopped, and the last good "
                           r"checkpoint is step 20"):
    train.train_and_evaluate(tiny(g_lr=1e30, d_lr=1e30, log_every=1), workdir)
  path = os.path.join(workdir, "checkpoints")
  assert sorted(os.listdir(path)) == ["20"]
  restored = ocp.StandardCheckpointer().restore(os.path.join(path, "20", "state"))
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(restored["params"]))
