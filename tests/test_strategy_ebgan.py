"""ebgan's energy, margin loss and pull-away term against hand-computed values, its option
check, and the step's wiring of them on 2-D points."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import data, strategies
from aegan_jax.config import Config
from aegan_jax.data import pipeline
from aegan_jax.errors import UserError
from aegan_jax.strategies import ebgan


def test_energy_by_hand():
  # Two examples of shape (1, 2): the norm runs over every non-batch dimension.
  x = jnp.array([[[0.0, 0.0]], [[1.0, 2.0]]])
  recon = jnp.array([[[3.0, 4.0]], [[1.0, 0.0]]])
  want = [math.sqrt(3.0 ** 2 + 4.0 ** 2), math.sqrt(0.0 ** 2 + (0.0 - 2.0) ** 2)]
  np.testing.assert_allclose(ebgan.energy(x, recon), want, rtol=1e-6)


def test_energy_gradient_is_finite_at_a_perfect_reconstruction():
  x = jnp.array([[0.5, 0.25], [1.0, 0.0]])
  grad = jax.grad(lambda r: jnp.sum(ebgan.energy(x, r)))(x)
  assert np.all(np.isfinite(grad))


def test_discriminator_loss_by_hand():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([4.0, 12.0])
  want = (1.0 + 3.0) / 2 + (max(0.0, 10.0 - 4.0) + max(0.0, 10.0 - 12.0)) / 2
  assert float(ebgan.discriminator_loss(real, fake, 10.0)) == pytest.approx(want, rel=1e-6)


def test_hinge_part_is_zero_past_the_margin():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([10.5, 12.0])
  loss = ebgan.discriminator_loss(real, fake, 10.0)
  assert float(loss) == pytest.approx((1.0 + 3.0) / 2, rel=1e-6)
  # ... and fakes past the margin give D no gradient.
  grad = jax.grad(lambda f: ebgan.discriminator_loss(real, f, 10.0))(fake)
  np.testing.assert_array_equal(grad, [0.0, 0.0])


def test_pull_away_by_hand():
  codes = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
  # Cosines of the pairs (0, 1), (0, 2), (1, 2); each unordered pair counts twice.
  cos01 = 1.0 / (1.0 * math.sqrt(2.0))
  cos02 = 0.0 / (1.0 * 2.0)
  cos12 = 2.0 / (math.sqrt(2.0) * 2.0)
  want = 2 * (cos01 ** 2 + cos02 ** 2 + cos12 ** 2) / (3 * 2)
  assert float(ebgan.pull_away(codes)) == pytest.approx(want, rel=1e-6)


def test_pull_away_extremes():
  same = jnp.array([[1.0, 2.0], [2.0, 4.0], [-0.5, -1.0]])   # one direction, any scale or sign
  assert float(ebgan.pull_away(same)) == pytest.approx(1.0, rel=1e-6)
  assert float(ebgan.pull_away(jnp.eye(4))) == pytest.approx(0.0, abs=1e-7)
  assert float(ebgan.pull_away(jnp.ones((1, 3)))) == 0.0      # no pairs in a batch of one


def test_check_refuses_another_loss():
  ebgan.check(Config(strategy="ebgan"))
  for config in (Config(strategy="ebgan", loss="hinge"),
                 Config(strategy="ebgan", loss="lsgan")):
    with pytest.raises(UserError) as err:
      strategies.check(config)
    message = str(err.value)
    assert "\n" not in message and "--loss does not apply" in message


def test_step_wiring_on_grid():
  """With m = 0 the hinge vanishes, so d_loss is exactly the mean real energy."""
  grid = data.load("grid")
  config = Config(dataset="grid", strategy="ebgan", mlp_hidden=(16,), latent_dim=4, code_dim=1,
                  steps=3, batch_size=32, ebgan_margin=0.0)
  strategy = strategies.build(config, grid.spec)
  assert strategy.has_autoencoder
  state = strategy.init(jax.random.key(0))
  step = jax.jit(strategy.phases[0].step)
  for i in range(3):
    batch = pipeline.batch_at(grid.train, jax.random.key(1), jnp.int32(i), 32)
    state, metrics = step(state, batch)
    assert set(metrics) == {"d_loss", "g_loss", "real_energy", "fake_energy", "pull_away"}
    assert float(metrics["d_loss"]) == pytest.approx(float(metrics["real_energy"]), rel=1e-6)
    assert 0.0 <= float(metrics["pull_away"]) <= 1.0
  x = grid.train["image"][:5]
  assert strategy.reconstruct(state, x, jax.random.key(2)).shape == x.shape
