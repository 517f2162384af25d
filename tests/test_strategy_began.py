"""began's L1 energy, losses, k_t update and convergence measure against hand-computed values,
its option check, and the balance k_t in real steps on 2-D points."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import data, strategies
from aegan_jax.config import Config
from aegan_jax.data import pipeline
from aegan_jax.errors import UserError
from aegan_jax.strategies import began


def test_l1_energy_by_hand():
  # Two examples of shape (1, 2): the mean runs over every non-batch dimension.
  x = jnp.array([[[0.0, 1.0]], [[2.0, 2.0]]])
  recon = jnp.array([[[1.0, 1.0]], [[0.0, 3.0]]])
  want = [(abs(0.0 - 1.0) + abs(1.0 - 1.0)) / 2, (abs(2.0 - 0.0) + abs(2.0 - 3.0)) / 2]
  np.testing.assert_allclose(began.l1_energy(x, recon), want, rtol=1e-6)


def test_began_losses_by_hand():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([2.0, 4.0])
  d_loss, g_loss = began.began_losses(real, fake, jnp.float32(0.25))
  assert float(d_loss) == pytest.approx((1.0 + 3.0) / 2 - 0.25 * (2.0 + 4.0) / 2, rel=1e-6)
  assert float(g_loss) == pytest.approx((2.0 + 4.0) / 2, rel=1e-6)


def test_update_k_by_hand():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([2.0, 4.0])
  k = began.update_k(jnp.float32(0.5), real, fake, 0.5, 0.1)
  assert float(k) == pytest.approx(0.5 + 0.1 * (0.5 * (1.0 + 3.0) / 2 - (2.0 + 4.0) / 2),
                                   rel=1e-6)
  # Clipped to [0, 1] at both ends.
  assert float(began.update_k(jnp.float32(0.95), jnp.array([4.0]), jnp.array([0.0]),
                              0.5, 0.1)) == 1.0   # 0.95 + 0.1 * (0.5 * 4 - 0) = 1.15
  assert float(began.update_k(jnp.float32(0.05), jnp.array([0.0]), jnp.array([2.0]),
                              0.5, 0.1)) == 0.0   # 0.05 + 0.1 * (0 - 2) = -0.15


def test_convergence_by_hand():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([2.0, 4.0])
  want = (1.0 + 3.0) / 2 + abs(0.5 * (1.0 + 3.0) / 2 - (2.0 + 4.0) / 2)
  assert float(began.convergence(real, fake, 0.5)) == pytest.approx(want, rel=1e-6)


def test_check_refuses_another_loss():
  began.check(Config(strategy="began"))
  with pytest.raises(UserError) as err:
    strategies.check(Config(strategy="began", loss="hinge"))
  message = str(err.value)
  assert "\n" not in message and "--loss does not apply" in message


@pytest.fixture(scope="module")
def grid():
  return data.load("grid")


@pytest.mark.parametrize("gamma", [0.01, 1.0])
def test_k_stays_in_unit_interval_and_follows_the_balance(gamma, grid):
  """From k = 0.5 with a large lambda_k, k moves by lambda_k (gamma L(x) - L(G(z))) each step,
  clipped to [0, 1]. At the start fakes sit near the origin and reconstruct better than the
  grid's points, so gamma = 0.01 drives k down to 0 and gamma = 1 up to 1."""
  config = Config(dataset="grid", strategy="began", mlp_hidden=(16,), latent_dim=4, code_dim=1,
                  steps=8, batch_size=32, began_gamma=gamma, began_lambda_k=0.5)
  strategy = strategies.build(config, grid.spec)
  state = strategy.init(jax.random.key(0))
  assert state.extras["k"].dtype == jnp.float32 and float(state.extras["k"]) == 0.0
  state = state.replace(extras={**state.extras, "k": jnp.float32(0.5)})
  step = jax.jit(strategy.phases[0].step)
  moves = set()
  for i in range(config.steps):
    k_old = float(state.extras["k"])
    batch = pipeline.batch_at(grid.train, jax.random.key(1), jnp.int32(i), 32)
    state, metrics = step(state, batch)
    k = float(state.extras["k"])
    assert k == float(metrics["k"]) and 0.0 <= k <= 1.0
    # The k update reads the D step's batch means, which the step logs.
    balance = gamma * float(metrics["real_energy"]) - float(metrics["fake_energy"])
    assert k == pytest.approx(min(1.0, max(0.0, k_old + 0.5 * balance)), abs=1e-6)
    if k != k_old:
      assert np.sign(k - k_old) == np.sign(balance)
      moves.add(float(np.sign(k - k_old)))
    # D's loss used the k it found; M the same batch means.
    assert float(metrics["d_loss"]) == pytest.approx(
        float(metrics["real_energy"]) - k_old * float(metrics["fake_energy"]), rel=1e-5)
    assert float(metrics["convergence"]) == pytest.approx(
        float(metrics["real_energy"]) + abs(balance), rel=1e-5)
    assert np.isfinite(float(metrics["g_loss"]))
  assert (moves, k) == (({-1.0}, 0.0) if gamma < 0.1 else ({1.0}, 1.0))
  x = grid.train["image"][:5]
  assert strategy.reconstruct(state, x, jax.random.key(2)).shape == x.shape
