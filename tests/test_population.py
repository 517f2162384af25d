"""--population: K runs in one vmapped program, each member equal to its single run."""

import json
import os

import jax
import numpy as np
import pytest

from aegan_jax import train
from aegan_jax.config import Config
from aegan_jax.errors import UserError
from tests.conftest import run_module

# ae_pretrain has a host-side phase transition (the code-prior fit) that runs per member.
BASE = Config(dataset="grid", strategy="ae_pretrain", mlp_hidden=(32,), code_dim=4, latent_dim=4,
              pretrain_steps=20, steps=20, batch_size=64, log_every=5, sample_every=20,
              checkpoint_every=20, eval_every=20)


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_member_equals_its_single_run(tmp_path):
  states = train.train_members(BASE, str(tmp_path / "pop"), 3, "g_lr=1e-4,2e-4,4e-4")
  single = train.train_and_evaluate(BASE.replace(seed=1, g_lr=2e-4), str(tmp_path / "single"))
  member = str(tmp_path / "pop" / "member_01")

  for a, b in zip(jax.tree.leaves(states[1]), jax.tree.leaves(single)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
  # Members really differ (seed and learning rate), so the equality above is not vacuous.
  assert not np.allclose(states[0].params["generator"]["decoder"]["Dense_0"]["kernel"],
                         states[1].params["generator"]["decoder"]["Dense_0"]["kernel"])
  # Its outputs are the single run's: the same logged values, config, pictures, summary.
  mine, ref = _records(member), _records(str(tmp_path / "single"))
  assert [(r["step"], r["phase"]) for r in mine] == [(r["step"], r["phase"]) for r in ref]
  for a, b in zip(mine, ref):
    for k, v in a.items():
      if k not in ("step", "phase", "steps_per_sec"):
        assert abs(v - b[k]) <= 1e-4 * max(1.0, abs(v)), (a["step"], k, v, b[k])
  with open(os.path.join(member, "config.json")) as f:
    saved = json.load(f)
  assert saved["seed"] == 1 and saved["g_lr"] == 2e-4
  for name in ("samples/final.png", "summary.json", "checkpoints/40"):
    assert os.path.exists(os.path.join(member, name)), name
  with open(tmp_path / "pop" / "population.json") as f:
    assert [(m["workdir"], m["seed"], m["g_lr"]) for m in json.load(f)] == [
        ("member_00", 0, 1e-4), ("member_01", 1, 2e-4), ("member_02", 2, 4e-4)]


@pytest.mark.parametrize("size,vary,message", [
    (2, "steps=10,20", "cannot vary steps (a int)"),
    (3, "g_lr=1e-4,2e-4", "gives 2 values of g_lr for --population=3"),
    (2, "g_lrr=1e-4,2e-4", "unknown field 'g_lrr'"),
    (2, "g_lr=fast,slow", "g_lr takes numbers"),
    (0, "", "--population must be >= 1"),
])
def test_bad_population_flags_are_refused(size, vary, message, tmp_path):
  with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
    train.train_members(BASE, str(tmp_path / "w"), size, vary)
  assert not os.path.exists(tmp_path / "w")


def test_a_field_the_program_branches_on_is_refused(tmp_path):
  # ema_decay decides whether the EMA exists at all: one program cannot hold both answers.
  proc = run_module("experiments.train", f"--workdir={tmp_path / 'w'}", "--dataset=grid",
                    "--strategy=gan", "--mlp_hidden=16", "--steps=5", "--population=2",
                    "--population_vary=ema_decay=0.9,0.99")
  assert proc.returncode == 2, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error: --population_vary cannot vary ema_decay")
  assert "Traceback" not in proc.stderr


def test_another_population_in_the_workdir_is_refused(tmp_path):
  small = BASE.replace(pretrain_steps=5, steps=5, log_every=5, sample_every=5,
                       checkpoint_every=5, eval_every=0)
  train.train_members(small, str(tmp_path / "w"), 2)
  before = open(tmp_path / "w" / "population.json").read()
  with pytest.raises(UserError, match="holds another population"):
    train.train_members(small, str(tmp_path / "w"), 2, "g_lr=1e-4,3e-4")
  assert open(tmp_path / "w" / "population.json").read() == before
