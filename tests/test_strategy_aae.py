"""Adversarial autoencoder: its reconstruction loss by hand, a discriminator on codes, and
which network each phase trains."""

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
from aegan_jax.strategies import aae


def sigmoid(x):
  return 1.0 / (1.0 + math.exp(-x))


@pytest.fixture(scope="module")
def grid():
  return data.load("grid")


def grid_config(**overrides):
  # latent_dim 1, unlike the points' 2 numbers, so a D built for examples would not fit codes
  # (and no more than the data's 2, which a deterministic encoder's codes could not fill).
  base = dict(dataset="grid", strategy="aae", mlp_hidden=(16,), latent_dim=1, steps=2,
              batch_size=32)
  return Config(**{**base, **overrides})


def grid_batch(grid, step):
  return pipeline.batch_at(grid.train, jax.random.key(7), jnp.int32(step), 32)


def test_reconstruction_loss_by_hand():
  logits = jnp.array([[0.0, 2.0], [-1.0, 0.5]])
  x = jnp.array([[1.0, 0.0], [0.25, 1.0]])
  images = aae.reconstruction_loss("mse", unit_range=True)  # data-space error after the sigmoid
  want = ((sigmoid(0) - 1) ** 2 + sigmoid(2) ** 2 + (sigmoid(-1) - 0.25) ** 2
          + (sigmoid(0.5) - 1) ** 2) / 4
  assert float(images(logits, x)) == pytest.approx(want, rel=1e-6)
  points = aae.reconstruction_loss("mse", unit_range=False)  # linear outputs
  want = ((0 - 1) ** 2 + (2 - 0) ** 2 + (-1 - 0.25) ** 2 + (0.5 - 1) ** 2) / 4
  assert float(points(logits, x)) == pytest.approx(want, rel=1e-6)
  bce = aae.reconstruction_loss("bce", unit_range=True)
  want = -(math.log(sigmoid(0)) + math.log(1 - sigmoid(2))
           + 0.25 * math.log(sigmoid(-1)) + 0.75 * math.log(1 - sigmoid(-1))
           + math.log(sigmoid(0.5))) / 4
  assert float(bce(logits, x)) == pytest.approx(want, rel=1e-6)
  with pytest.raises(UserError, match="recon_loss=mse"):
    aae.reconstruction_loss("bce", unit_range=False)


@pytest.fixture(scope="module")
def plain(grid):
  """One step from a fresh state, with the shapes that D_z's update was given."""
  seen = []
  update = aae.update_discriminator

  def spy(adv, module, tx, state, real, fake, key, **kw):
    seen.append((real.shape, fake.shape))
    return update(adv, module, tx, state, real, fake, key, **kw)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(aae, "update_discriminator", spy)
    strategy = strategies.build(grid_config(), grid.spec)
    state = strategy.init(jax.random.key(0))
    new, metrics = jax.jit(strategy.phases[0].step)(state, grid_batch(grid, 0))
  return strategy, state, new, metrics, seen


def test_discriminator_sees_codes_not_examples(plain):
  strategy, state, new, metrics, seen = plain
  assert state.params["discriminator"]["Dense_0"]["kernel"].shape == (1, 16)
  assert seen == [((32, 1), (32, 1))]  # real: prior samples z; fake: the codes E(x)
  assert all(np.all(np.isfinite(v)) for v in metrics.values())
  assert strategy.generate(new, jax.random.key(1), 5).shape == (5, 2)


class LoudAdversary(Adversary):
  """The game with the encoder's (generator-side) loss scaled up 100 times."""

  def g_loss(self, fake_logits):
    return 100.0 * super().g_loss(fake_logits)


def test_latent_game_trains_the_encoder_only(grid, plain, monkeypatch):
  """Scaling the encoder's adversarial loss leaves G's step and D_z's step as they were
  (G is trained by reconstruction alone) and scales E's adversarial gradient alike."""
  _, _, first, metrics, _ = plain
  monkeypatch.setattr(aae, "Adversary", LoudAdversary)
  loud = strategies.build(grid_config(), grid.spec)
  second, loud_metrics = jax.jit(loud.phases[0].step)(loud.init(jax.random.key(0)),
                                                      grid_batch(grid, 0))
  assert float(loud_metrics["g_loss"]) == pytest.approx(100 * float(metrics["g_loss"]), rel=1e-4)
  for name in ("generator", "discriminator"):
    for a, b in zip(jax.tree.leaves(first.params[name]), jax.tree.leaves(second.params[name])):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
  # Adam's first step is about lr * sign(gradient), so E's new weights would not show the
  # scale; its adversarial gradient does.
  assert float(loud_metrics["e_grad_norm"]) == pytest.approx(
      100 * float(metrics["e_grad_norm"]), rel=1e-3)


def test_bce_reconstruction_uses_the_generators_logits():
  """recon_loss on images is Bernoulli in G's logits: it matches the probabilities that G
  (with its sigmoid) gives, through the same parameters. Tiny 4x4 'images' suffice."""
  config = Config(strategy="aae", recon_loss="bce", mlp_hidden=(16,), latent_dim=4,
                  batch_size=16)
  strategy = strategies.build(config, data.Spec((4, 4, 1), unit_range=True))
  state = strategy.init(jax.random.key(0))
  batch = {"image": jax.random.uniform(jax.random.key(3), (16, 4, 4, 1))}
  p = np.asarray(strategy.reconstruct(state, batch["image"], jax.random.key(1)), np.float64)
  x = np.asarray(batch["image"], np.float64)
  want_bce = np.mean(-(x * np.log(p) + (1 - x) * np.log(1 - p)))
  _, metrics = jax.jit(strategy.phases[0].step)(state, batch)
  assert float(metrics["recon_loss"]) == pytest.approx(want_bce, rel=1e-4)
  assert float(metrics["recon_mse"]) == pytest.approx(np.mean(np.square(p - x)), rel=1e-4)
