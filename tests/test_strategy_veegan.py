"""veegan: the generator objective by hand, the logistic-only check, and F trained by the
reconstruction term alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import data, strategies
from aegan_jax.config import Config
from aegan_jax.data import pipeline
from aegan_jax.errors import UserError
from aegan_jax.strategies.veegan import generator_objective


def _config(**kw):
  return Config(dataset="grid", strategy="veegan", mlp_hidden=(16,), latent_dim=2, steps=4,
                batch_size=32, **kw)


def test_generator_objective_by_hand():
  """O = -mean logit + w * mean_i sum_j (z_ij - F(G(z))_ij)^2 / 2 (a unit-variance Gaussian
  reconstructor's negative log-likelihood; the l2 term weighed 1 before, not 1/2)."""
  logits = jnp.array([1.0, -3.0])
  z = jnp.array([[1.0, 2.0], [0.0, 0.0]])
  z_rec = jnp.array([[0.0, 2.0], [1.0, 1.0]])
  recon = ((1 - 0) ** 2 + (2 - 2) ** 2 + (0 - 1) ** 2 + (0 - 1) ** 2) / 2 / 2
  loss, got_recon = generator_objective(logits, z, z_rec, 0.5)
  assert float(got_recon) == pytest.approx(recon, rel=1e-6)
  assert float(loss) == pytest.approx(-(1.0 + -3.0) / 2 + 0.5 * recon, rel=1e-6)


def test_log_sigmoid_objective_by_hand():
  """--veegan_log_sigmoid: -mean log sigmoid(l) in place of -mean l; it saturates for large
  logits (no pull left) where -l does not."""
  logits = jnp.array([1.0, -3.0])
  z = z_rec = jnp.zeros((2, 2))
  loss, _ = generator_objective(logits, z, z_rec, 1.0, log_sigmoid=True)
  want = (np.log1p(np.exp(-1.0)) + np.log1p(np.exp(3.0))) / 2
  assert float(loss) == pytest.approx(want, rel=1e-6)
  grad = jax.grad(lambda l: generator_objective(l, z, z_rec, 1.0, log_sigmoid=True)[0])(
      jnp.array([30.0, -30.0]))
  assert abs(float(grad[0])) < 1e-9 and float(grad[1]) == pytest.approx(-0.5, rel=1e-6)


@pytest.mark.parametrize("loss, extra", [("hinge", {}), ("lsgan", {}),
                                         ("wgan", {"gp_weight": 10.0})])
def test_refuses_non_logistic_games(loss, extra):
  with pytest.raises(UserError, match="--loss=non_saturating"):
    strategies.check(_config(loss=loss, **extra))


def test_accepts_logistic_games():
  strategies.check(_config(loss="minimax"))
  strategies.check(_config(label_smoothing=0.1, gp_weight=1.0, n_critic=2))


def test_reconstructor_learns_from_the_l2_term_only():
  """With --veegan_recon_weight=0 nothing in O depends on F: a step moves G and D, not F
  (Adam's update of an all-zero gradient is exactly zero)."""
  grid = data.load("grid")
  strategy = strategies.build(_config(veegan_recon_weight=0.0), grid.spec)
  state = jax.jit(strategy.init)(jax.random.key(0))
  batch = pipeline.batch_at(grid.train, jax.random.key(7), jnp.int32(0), 32)
  new, metrics = jax.jit(strategy.phases[0].step)(state, batch)
  same = lambda n: all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
                       zip(jax.tree.leaves(state.params[n]), jax.tree.leaves(new.params[n])))
  assert same("encoder")
  assert not same("generator") and not same("discriminator")
  assert float(metrics["z_recon"]) > 0  # still measured, just not trained on
