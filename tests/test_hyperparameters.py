"""A strategy's own hyperparameters: declared once in its module, a Config field and a flag,
refused by the other strategies, held to the declared bounds."""

import dataclasses
import types

import pytest

from aegan_jax import config as config_lib
from aegan_jax import hyperparameters, strategies
from aegan_jax.config import Config, validate
from aegan_jax.errors import UserError
from aegan_jax.hyperparameters import Hyperparameter
from aegan_jax.registry import Registry
from aegan_jax.strategies import began, ebgan, mdgan


def test_the_declaration_is_the_field_the_flag_and_the_owner(tmp_path):
  fields = {f.name: f for f in dataclasses.fields(Config)}
  for name, hp in mdgan.HYPERPARAMETERS.items():
    assert fields[name].default == hp.default and fields[name].metadata["help"] == hp.help
    assert fields[name].metadata["strategy"] == "mdgan"
  flagfile = tmp_path / "f.flags"
  flagfile.write_text("--strategy=mdgan\n--mdgan_lambda1=0.7\n")
  assert config_lib.from_flagfile(str(flagfile)).mdgan_lambda1 == 0.7
  with pytest.raises(UserError, match="--mdgan_lambda1 is a hyperparameter of --strategy=mdgan"):
    strategies.check(Config(strategy="gan", mdgan_lambda1=0.7))
  groups = dict(config_lib.flag_groups())
  assert groups["--strategy=mdgan's own hyperparameters"] == list(mdgan.HYPERPARAMETERS)


@pytest.mark.parametrize("overrides, message", [
    (dict(strategy="mdgan", mdgan_lambda1=-0.1), "--mdgan_lambda1 must be a finite number >= 0"),
    (dict(strategy="began", began_gamma=0.0), r"--began_gamma must be in \(0, 1\] \(BEGAN"),
    (dict(strategy="began", began_gamma=1.5), r"--began_gamma must be in \(0, 1\]"),
    (dict(code_components=0), "--code_components must be a positive integer, got 0"),
    (dict(d_warmup_steps=-1), "--d_warmup_steps must be >= 0, got -1"),
    (dict(strategy="ebgan", ebgan_margin=-2.0), "--ebgan_margin must be a finite number >= 0"),
])
def test_validate_holds_each_to_its_declared_bounds(overrides, message):
  with pytest.raises(UserError, match=message):
    validate(Config(**overrides))


def test_inside_the_bounds_and_auto_pass():
  validate(Config(strategy="ebgan", ebgan_margin=ebgan.HYPERPARAMETERS["ebgan_margin"].auto))
  validate(Config(strategy="began", began_gamma=began.HYPERPARAMETERS["began_gamma"].maximum))
  validate(Config(code_components=3, d_warmup_steps=0))


def test_a_name_declared_by_two_strategies_is_refused():
  registry = Registry("strategy", "strategy")
  hp = Hyperparameter(1.0, "a weight", minimum=0)
  registry.register("a")(types.SimpleNamespace(HYPERPARAMETERS={"shared_weight": hp}))
  registry.register("b")(types.SimpleNamespace(HYPERPARAMETERS={"shared_weight": hp}))
  with pytest.raises(ValueError, match="declared by a and b"):
    hyperparameters.declared(registry)
  registry = Registry("strategy", "strategy")
  registry.register("a")(types.SimpleNamespace(HYPERPARAMETERS={"a_weight": hp}))
  registry.register("b")(types.SimpleNamespace())  # none of its own
  assert hyperparameters.declared(registry) == {"a_weight": ("a", hp)}


def test_a_run_checks_its_strategy_once_per_member(tmp_path, monkeypatch):
  """Checked once, before anything is loaded: not again when the members are built, nor inside
  the traced step where a population's varied floats are traced values."""
  from aegan_jax import train
  calls = []
  check = strategies.check
  monkeypatch.setattr(strategies, "check", lambda c: (calls.append(c.g_lr), check(c)))
  base = Config(dataset="grid", strategy="mdgan", mlp_hidden=(16,), latent_dim=2, steps=4,
                batch_size=32, log_every=2, sample_every=4, checkpoint_every=4, eval_every=0)
  train.train_members(base, str(tmp_path / "pop"), 2, "g_lr=1e-4,3e-4")
  assert sorted(calls) == [1e-4, 3e-4]
