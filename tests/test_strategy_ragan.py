"""ragan, the README's fork-it example: its loss by hand, its refusals, and that the README shows
the file as it is (the generic strategy tests train it like every other strategy)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import data, strategies
from aegan_jax.config import Config
from aegan_jax.errors import UserError
from aegan_jax.strategies import ragan
from tests.conftest import REPO


def test_relativistic_loss_by_hand():
  a, b = np.array([2.0, -1.0, 0.5]), np.array([0.0, 1.0])
  log_s = lambda v: -np.log1p(np.exp(-v))
  want = -(np.mean(log_s(a - b.mean())) + np.mean(log_s(a.mean() - b)))
  np.testing.assert_allclose(float(ragan.relativistic_loss(jnp.asarray(a), jnp.asarray(b))), want,
                             rtol=1e-6)
  # Swapping the roles is what G minimizes: the two disagree unless the logits coincide.
  assert float(ragan.relativistic_loss(jnp.asarray(b), jnp.asarray(a))) > want
  # Stable where a naive log(sigmoid) underflows.
  assert np.isfinite(float(ragan.relativistic_loss(jnp.array([-200.0]), jnp.array([200.0]))))


def test_d_step_separates_real_from_fake_on_the_grid():
  grid = data.load("grid")
  config = Config(dataset="grid", strategy="ragan", mlp_hidden=(32,), latent_dim=4, steps=60,
                  batch_size=64, d_lr=1e-3)
  strategy = strategies.build(config, grid.spec)
  state = strategy.init(jax.random.key(0))
  step = jax.jit(strategy.phases[0].step)
  losses = []
  for t in range(60):
    batch = {"image": grid.train["image"][t * 64 % 4000:(t * 64 % 4000) + 64]}
    state, metrics = step(state, batch)
    losses.append(float(metrics["d_loss"]))
  assert int(state.step) == 60
  assert np.mean(losses[-10:]) < np.mean(losses[:10])  # D learns which side is which


def test_refuses_flags_it_does_not_honour():
  with pytest.raises(UserError, match="--strategy=ragan plays its own relativistic game"):
    strategies.check(Config(strategy="ragan", loss="hinge"))
  with pytest.raises(UserError, match="r1_weight"):
    strategies.check(Config(strategy="ragan", r1_weight=1.0))


def test_readme_shows_the_file_as_it_is():
  with open(os.path.join(REPO, "README.md")) as f:
    readme = f.read()
  with open(os.path.join(REPO, "aegan_jax", "strategies", "ragan.py")) as f:
    source = f.read()
  assert source in readme
  assert 'STRATEGIES.register("ragan")(ragan)' in readme
