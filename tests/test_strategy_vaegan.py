"""VAE-GAN: its losses against hand-computed values, and which network gets which gradient."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import data, strategies
from aegan_jax.adversarial import Adversary
from aegan_jax.config import Config
from aegan_jax.data import pipeline
from aegan_jax.losses import ADVERSARIAL
from aegan_jax.models import apply_model
from aegan_jax.strategies import vaegan


def sigmoid(x):
  return 1.0 / (1.0 + math.exp(-x))


@pytest.fixture(scope="module")
def grid():
  return data.load("grid")


def grid_config(**overrides):
  base = dict(dataset="grid", strategy="vaegan", mlp_hidden=(16,), latent_dim=3, steps=2,
              batch_size=32, g_lr=1e-2)
  return Config(**{**base, **overrides})


def grid_batch(grid, step):
  return pipeline.batch_at(grid.train, jax.random.key(7), jnp.int32(step), 32)


def test_kl_prior_by_hand():
  mu = jnp.array([[0.5, -1.0], [0.0, 2.0]])
  logvar = jnp.array([[0.0, 1.0], [-0.5, 0.2]])
  first = 0.5 * (0.25 + 1 - 1 - 0) + 0.5 * (1 + math.e - 1 - 1)
  second = 0.5 * (0 + math.exp(-0.5) - 1 + 0.5) + 0.5 * (4 + math.exp(0.2) - 1 - 0.2)
  assert float(vaegan.kl_prior(mu, logvar)) == pytest.approx((first + second) / 2, rel=1e-6)
  assert float(vaegan.kl_prior(jnp.zeros((3, 4)), jnp.zeros((3, 4)))) == 0.0  # q = the prior


def test_feature_reconstruction_by_hand():
  f_real = jnp.array([[1.0, 2.0], [0.0, -1.0]])
  f_fake = jnp.array([[0.5, 2.0], [1.0, 1.0]])
  want = 0.5 * ((0.5 ** 2 + 0 ** 2) + (1 ** 2 + 2 ** 2)) / 2  # half the sum over features
  assert float(vaegan.feature_reconstruction(f_real, f_fake)) == pytest.approx(want, rel=1e-6)


def test_reparameterize_by_hand():
  mu, logvar = jnp.array([[1.0, -2.0]]), jnp.array([[0.0, 2.0]])
  eps = jnp.array([[0.5, -1.5]])
  z = vaegan.reparameterize(mu, logvar, eps)
  np.testing.assert_allclose(np.asarray(z), [[1.0 + 0.5, -2.0 - math.e * 1.5]], rtol=1e-6)


def test_encoder_and_decoder_objectives_by_hand():
  mu, logvar = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.0]])
  f_real, f_recon = jnp.array([[1.0, 3.0]]), jnp.array([[0.0, 1.0]])
  llike = (1 ** 2 + 2 ** 2) / 2
  assert float(vaegan.encoder_objective(mu, logvar, f_real, f_recon)) == pytest.approx(
      0.5 * 1.0 + llike, rel=1e-6)
  adv = Adversary(ADVERSARIAL.get("non_saturating"))
  recon_logits, prior_logits = jnp.array([0.3, -2.0]), jnp.array([1.0, 0.0])
  want = (2.0 * llike - (math.log(sigmoid(0.3)) + math.log(sigmoid(-2.0))) / 2
          - (math.log(sigmoid(1.0)) + math.log(sigmoid(0.0))) / 2)
  got = vaegan.decoder_objective(adv, recon_logits, prior_logits, llike, 2.0)
  assert float(got) == pytest.approx(want, rel=1e-6)


class LoudAdversary(Adversary):
  """The game with G's loss scaled up 100 times; D's loss unchanged."""

  def g_loss(self, fake_logits):
    return 100.0 * super().g_loss(fake_logits)


def test_encoder_gets_no_gradient_from_the_decoders_terms(grid, monkeypatch):
  """Scaling the GAN terms and gamma changes G's step but not E's: E's objective is
  L_prior + L_llike alone. (One step: after it, G differs, so D and L_llike would too.)"""
  batch = grid_batch(grid, 0)
  plain = strategies.build(grid_config(), grid.spec)
  state = plain.init(jax.random.key(0))
  first, metrics = jax.jit(plain.phases[0].step)(state, batch)
  monkeypatch.setattr(vaegan, "Adversary", LoudAdversary)
  loud = strategies.build(grid_config(vaegan_gamma=5.0), grid.spec)
  second, loud_metrics = jax.jit(loud.phases[0].step)(loud.init(jax.random.key(0)), batch)
  assert float(loud_metrics["g_loss"]) > 2 * float(metrics["g_loss"])
  for a, b in zip(jax.tree.leaves(first.params["encoder"]),
                  jax.tree.leaves(second.params["encoder"])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
  for name in ("discriminator", "generator"):
    assert jax.tree.all(jax.tree.map(lambda a, b: not np.allclose(a, b), state.params[name],
                                     first.params[name])), name
  assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(first.params["generator"]),
                                                   jax.tree.leaves(second.params["generator"])))


def test_reconstruction_decodes_the_posterior_mean(grid):
  strategy = strategies.build(grid_config(), grid.spec)
  state = strategy.init(jax.random.key(0))
  x = grid.train["image"][:8]
  e, _ = apply_model(strategy.nets.encoder, state.params["encoder"], {}, x, train=False)
  assert e.shape == (8, 2 * 3)  # mean and log-variance
  want, _ = apply_model(strategy.nets.generator, state.params["generator"], {}, e[:, :3],
                        train=False)
  got = strategy.reconstruct(state, x, jax.random.key(1))
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(got),
                                np.asarray(strategy.reconstruct(state, x, jax.random.key(2))))


def test_d_regularizers_and_n_critic(grid):
  """D sees 2B fakes (x~ and x_p) against the real batch: the WGAN-GP interpolates and R1
  must still work; with n_critic=2, E and G move on the second step only."""
  config = grid_config(gp_weight=10.0, r1_weight=1.0, n_critic=2)
  strategy = strategies.build(config, grid.spec)
  state = strategy.init(jax.random.key(0))
  step = jax.jit(strategy.phases[0].step)
  one, m1 = step(state, grid_batch(grid, 0))
  two, m2 = step(one, grid_batch(grid, 1))
  for m in (m1, m2):
    assert {"gradient_penalty", "r1_penalty", "kl_prior", "feature_recon"} <= set(m)
    assert all(np.all(np.isfinite(v)) for v in m.values())
  for name in ("encoder", "generator"):
    same = lambda a, b: np.array_equal(np.asarray(a), np.asarray(b))
    assert jax.tree.all(jax.tree.map(same, state.params[name], one.params[name])), name
    assert not jax.tree.all(jax.tree.map(same, one.params[name], two.params[name])), name
  assert float(m1["g_grad_norm"]) == 0.0 and float(m2["g_grad_norm"]) > 0.0
