"""Objectives against hand-computed values, and the seed's min-max equation."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import losses


def sigmoid(x):
  return 1.0 / (1.0 + math.exp(-x))


def test_mse_by_hand():
  logits = jnp.array([[0.0, 2.0], [-1.0, 0.5]])
  x = jnp.array([[1.0, 0.0], [0.25, 1.0]])
  want = ((sigmoid(0) - 1) ** 2 + sigmoid(2) ** 2 + (sigmoid(-1) - 0.25) ** 2
          + (sigmoid(0.5) - 1) ** 2) / 4
  assert float(losses.mse(logits, x)) == pytest.approx(want, rel=1e-6)


def test_bce_by_hand():
  logits = jnp.array([0.0, 2.0, -1.0])
  x = jnp.array([1.0, 0.0, 0.25])
  terms = [-math.log(sigmoid(0)), -math.log(1 - sigmoid(2)),
           -(0.25 * math.log(sigmoid(-1)) + 0.75 * math.log(1 - sigmoid(-1)))]
  assert float(losses.bce(logits, x)) == pytest.approx(sum(terms) / 3, rel=1e-6)


def test_minimax_by_hand():
  real, fake = jnp.array([1.0, -0.5]), jnp.array([0.3, -2.0])
  v = (math.log(sigmoid(1)) + math.log(sigmoid(-0.5))) / 2 + (
      math.log(1 - sigmoid(0.3)) + math.log(1 - sigmoid(-2))) / 2
  mm = losses.ADVERSARIAL.get("minimax")
  assert float(mm.d_loss(real, fake)) == pytest.approx(-v, rel=1e-6)
  assert float(mm.g_loss(fake)) == pytest.approx(
      (math.log(1 - sigmoid(0.3)) + math.log(1 - sigmoid(-2))) / 2, rel=1e-6)


def test_non_saturating_by_hand():
  fake = jnp.array([0.3, -2.0])
  ns = losses.ADVERSARIAL.get("non_saturating")
  assert float(ns.g_loss(fake)) == pytest.approx(
      -(math.log(sigmoid(0.3)) + math.log(sigmoid(-2))) / 2, rel=1e-6)


def test_minimax_is_the_seeds_equation():
  """-d_loss == E[log D(x)] + E[log(1 - D(G(z)))], computed from probabilities in float64."""
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=64) * 3, rng.normal(size=64) * 3
  d_real, d_fake = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))
  seed_v = np.mean(np.log(d_real)) + np.mean(np.log(1 - d_fake))
  mm = losses.ADVERSARIAL.get("minimax")
  got = -float(mm.d_loss(jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)))
  assert got == pytest.approx(seed_v, rel=1e-5)
  # G minimizes the same V: its loss is V minus the term that does not depend on G.
  got_g = float(mm.g_loss(jnp.asarray(fake, jnp.float32)))
  assert got_g == pytest.approx(seed_v - np.mean(np.log(d_real)), rel=1e-5)


@pytest.mark.parametrize("name", ["minimax", "non_saturating"])
def test_stable_at_extreme_logits(name):
  loss = losses.ADVERSARIAL.get(name)
  big = jnp.array([200.0, -200.0])
  assert np.isfinite(float(loss.d_loss(big, -big)))
  assert np.isfinite(float(loss.g_loss(big)))
  # A confident, wrong discriminator gives a large but exact loss, not inf.
  assert float(loss.d_loss(jnp.array([-200.0]), jnp.array([200.0]))) == pytest.approx(400.0)
  assert np.isfinite(float(losses.bce(jnp.array([300.0]), jnp.array([0.0]))))


def test_lsgan_hinge_wgan_by_hand():
  real, fake = jnp.array([1.5, -0.5]), jnp.array([0.25, -2.0])
  ls = losses.ADVERSARIAL.get("lsgan")
  assert float(ls.d_loss(real, fake)) == pytest.approx(
      0.5 * ((0.5 ** 2 + 1.5 ** 2) / 2 + (0.25 ** 2 + 2.0 ** 2) / 2), rel=1e-6)
  assert float(ls.g_loss(fake)) == pytest.approx(0.5 * (0.75 ** 2 + 3.0 ** 2) / 2, rel=1e-6)
  hinge = losses.ADVERSARIAL.get("hinge")
  # relu(1 - 1.5) = 0, relu(1 + 0.5) = 1.5; relu(1 + 0.25) = 1.25, relu(1 - 2) = 0.
  assert float(hinge.d_loss(real, fake)) == pytest.approx((0 + 1.5) / 2 + (1.25 + 0) / 2)
  assert float(hinge.g_loss(fake)) == pytest.approx(-(0.25 - 2.0) / 2)
  wgan = losses.ADVERSARIAL.get("wgan")
  assert float(wgan.d_loss(real, fake)) == pytest.approx((0.25 - 2.0) / 2 - (1.5 - 0.5) / 2)
  assert wgan.needs_lipschitz and not hinge.needs_lipschitz


def test_one_sided_label_smoothing_by_hand():
  real, fake = jnp.array([1.0, -0.5]), jnp.array([0.3])
  s = 0.1
  want = (-(0.9 * math.log(sigmoid(1)) + 0.1 * math.log(1 - sigmoid(1)))
          - (0.9 * math.log(sigmoid(-0.5)) + 0.1 * math.log(1 - sigmoid(-0.5)))) / 2 \
      - math.log(1 - sigmoid(0.3))
  assert float(losses.smoothed_d_loss(real, fake, s)) == pytest.approx(want, rel=1e-6)
  # Without smoothing it is the plain logistic D loss.
  assert float(losses.smoothed_d_loss(real, fake, 0.0)) == pytest.approx(
      float(losses.ADVERSARIAL.get("minimax").d_loss(real, fake)), rel=1e-6)
