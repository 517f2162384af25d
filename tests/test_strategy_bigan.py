"""bigan: the swapped-label G/E loss by hand, and a joint D that really reads z."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import data, strategies
from aegan_jax.adversarial import Adversary
from aegan_jax.config import Config
from aegan_jax.data import pipeline
from aegan_jax.errors import UserError
from aegan_jax.losses import ADVERSARIAL
from aegan_jax.models import apply_model
from aegan_jax.strategies.bigan import encoder_generator_loss


@pytest.fixture(scope="module")
def grid():
  return data.load("grid")


@pytest.fixture(scope="module")
def built(grid):
  """A bigan on 2-D points, with n_critic=2 for the skipping test, and its initial state
  (init jitted: one compile instead of many small eager ones)."""
  strategy = strategies.build(_config(n_critic=2), grid.spec)
  return strategy, jax.jit(strategy.init)(jax.random.key(0))


def _config(**kw):
  return Config(dataset="grid", strategy="bigan", mlp_hidden=(16,), latent_dim=3, steps=4,
                batch_size=32, **kw)


def test_logistic_loss_is_non_saturating_for_both_players():
  """-E log D(G(z), z) - E log(1 - D(x, E(x))), with sigmoid(ln 3) = 3/4, sigmoid(0) = 1/2."""
  real = jnp.array([0.0, math.log(3.0)])
  fake = jnp.array([math.log(3.0), math.log(3.0)])
  # Unswapped, this would be -(log 1/2 + log 3/4) / 2 - log 1/4: the swap is visible.
  expected = -math.log(3 / 4) - (math.log(1 - 1 / 2) + math.log(1 - 3 / 4)) / 2
  for name in ("non_saturating", "minimax"):  # the same swapped game for both
    adv = Adversary(ADVERSARIAL.get(name))
    assert float(encoder_generator_loss(adv, real, fake)) == pytest.approx(expected, rel=1e-6)
  # Label smoothing regularizes D only; the G/E loss stays the plain game.
  smoothed = Adversary(ADVERSARIAL.get("non_saturating"), label_smoothing=0.1)
  assert float(encoder_generator_loss(smoothed, real, fake)) == pytest.approx(expected, rel=1e-6)


def test_hinge_loss_swaps_the_margins():
  """E relu(1 - D(G(z), z)) + E relu(1 + D(x, E(x)))."""
  real = jnp.array([0.5, -2.0])
  fake = jnp.array([2.0, 0.25])
  expected = (0.0 + (1 - 0.25)) / 2 + ((1 + 0.5) + 0.0) / 2
  adv = Adversary(ADVERSARIAL.get("hinge"))
  assert float(encoder_generator_loss(adv, real, fake)) == pytest.approx(expected, rel=1e-6)


def test_joint_discriminator_reads_z(grid, built):
  strategy, state = built
  nets = strategy.nets
  x = jnp.asarray(grid.train["image"][:8], jnp.float32)
  z1 = jax.random.normal(jax.random.key(1), (8, 3))
  z2 = z1 + 1.0
  d = lambda z: apply_model(nets.discriminator, state.params["discriminator"], {}, (x, z),
                            train=False)[0]
  assert d(z1).shape == (8,)
  assert float(jnp.max(jnp.abs(d(z1) - d(z2)))) > 1e-4
  # The (stochastic) encoder maps into z-space, so D can take its codes in place of z.
  code, _ = apply_model(nets.encoder, state.params["encoder"], {}, x,
                        nets.encoder_noise(jax.random.key(2), 8), train=False)
  assert code.shape == z1.shape and d(code).shape == (8,)


def test_n_critic_skips_generator_and_encoder_updates(grid, built):
  strategy, state = built
  step = jax.jit(strategy.phases[0].step)
  changed = lambda a, b: any(not np.array_equal(np.asarray(u), np.asarray(v))
                             for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  seen = []
  for t in range(2):
    batch = pipeline.batch_at(grid.train, jax.random.key(7), jnp.int32(t), 32)
    new, metrics = step(state, batch)
    seen.append({n: changed(state.params[n], new.params[n]) for n in new.params})
    assert np.isfinite(float(metrics["g_loss"]))
    state = new
  assert seen[0] == {"generator": False, "encoder": False, "discriminator": True}
  assert seen[1] == {"generator": True, "encoder": True, "discriminator": True}


def test_refuses_spectral_norm():
  """The joint D has no spectrally normalized layers: the flag would silently do nothing."""
  with pytest.raises(UserError, match="spectral_norm"):
    strategies.check(_config(spectral_norm=True))
  strategies.check(_config(loss="wgan", gp_weight=10.0, n_critic=5))  # WGAN-GP pairs are fine
