"""The regularizers and improved techniques: each against a case whose answer is known."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aegan_jax import strategies
from aegan_jax.adversarial import Adversary
from aegan_jax.config import Config
from aegan_jax.errors import UserError
from aegan_jax.losses import ADVERSARIAL
from aegan_jax.models.mlp import MLPDiscriminator
from aegan_jax.data import pipeline
from aegan_jax import data
from aegan_jax.models import apply_model, init_model
from tests.test_strategies import run_steps


def test_gradient_penalty_of_a_linear_critic():
  """D(x) = w.x has gradient w everywhere: GP = (||w|| - 1)^2, R1 = ||w||^2."""
  w = jnp.array([3.0, 4.0])  # ||w|| = 5
  critic = lambda x: x @ w
  real, fake = jnp.ones((6, 2)), -jnp.ones((6, 2))
  adv = Adversary(ADVERSARIAL.get("wgan"), gp_weight=10.0, r1_weight=2.0)
  total, metrics = adv.penalty(critic, real, fake, jax.random.key(0))
  assert float(metrics["gradient_penalty"]) == pytest.approx(16.0, rel=1e-5)
  assert float(metrics["r1_penalty"]) == pytest.approx(25.0, rel=1e-5)
  assert float(total) == pytest.approx(10 * 16.0 + 0.5 * 2.0 * 25.0, rel=1e-5)


def test_gradient_penalty_on_pairs_uses_every_leaf():
  """A joint critic D(x, z) = a.x + b.z: the input gradient norm is ||(a, b)||."""
  a, b = jnp.array([1.0, 2.0]), jnp.array([2.0])  # ||(a, b)|| = 3
  critic = lambda pair: pair[0] @ a + pair[1] @ b
  real = (jnp.ones((4, 2)), jnp.zeros((4, 1)))
  fake = (jnp.zeros((4, 2)), jnp.ones((4, 1)))
  adv = Adversary(ADVERSARIAL.get("wgan"), gp_weight=1.0)
  _, metrics = adv.penalty(critic, real, fake, jax.random.key(0))
  assert float(metrics["gradient_penalty"]) == pytest.approx(4.0, rel=1e-5)


def test_spectral_norm_bounds_each_layer():
  """After power iterations, every normalized weight has largest singular value ~1."""
  d = MLPDiscriminator((16, 16), spectral_norm=True)
  x = jax.random.normal(jax.random.key(0), (8, 5)) * 10
  params, bs = init_model(d, jax.random.key(1), x)
  for _ in range(30):  # the u vectors converge in train mode
    _, bs = apply_model(d, params, bs, x, train=True)
  sigmas = [float(v) for k, v in jax.tree_util.tree_leaves_with_path(bs)
            if "sigma" in jax.tree_util.keystr(k)]
  kernels = [np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(params)
             if "kernel" in jax.tree_util.keystr(k)]
  assert len(sigmas) == len(kernels) == 3
  for sigma, kernel in zip(sorted(sigmas), sorted(np.linalg.norm(k, 2) for k in kernels)):
    assert sigma == pytest.approx(kernel, rel=1e-3)  # sigma estimates ||W||_2: W / sigma has 1


def test_minibatch_discrimination_sees_collapse():
  """Identical examples give the largest similarity features, distinct ones smaller."""
  d = MLPDiscriminator((8,), minibatch_discrimination=True)
  same = jnp.ones((6, 3))
  varied = jax.random.normal(jax.random.key(0), (6, 3)) * 5
  params, _ = init_model(d, jax.random.key(1), same)
  (_, f_same), _ = apply_model(d, params, {}, same, train=True, with_features=True)
  (_, f_var), _ = apply_model(d, params, {}, varied, train=True, with_features=True)
  # The last 100 features are o(x): for identical rows each is exactly batch - 1.
  np.testing.assert_allclose(np.asarray(f_same[:, -100:]), 5.0, rtol=1e-5)
  assert float(jnp.mean(f_var[:, -100:])) < 5.0


def _grid_strategy(**kw):
  grid = data.load("grid")
  config = Config(dataset="grid", strategy="gan", mlp_hidden=(16,), latent_dim=2, steps=4,
                  batch_size=32, **kw)
  return config, grid, strategies.build(config, grid.spec)


def _run(strategy, grid, steps):
  state = strategy.init(jax.random.key(0))
  fn = jax.jit(strategy.phases[-1].step)
  for t in range(steps):
    batch = pipeline.batch_at(grid.train, jax.random.key(7), jnp.int32(t), 32)
    state, metrics = fn(state, batch)
  return state, metrics


def test_n_critic_updates_the_generator_every_nth_step():
  _, grid, strategy = _grid_strategy(n_critic=3)
  g0 = strategy.init(jax.random.key(0)).params["generator"]
  state2, _ = _run(strategy, grid, 2)   # steps 1, 2: D only
  state3, _ = _run(strategy, grid, 3)   # step 3: G too
  same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a),
                                                                  jax.tree.leaves(b)))
  assert same(g0, state2.params["generator"])
  assert not same(g0, state3.params["generator"])


def test_historical_average_is_the_running_mean():
  _, grid, strategy = _grid_strategy(historical_weight=0.01)
  state = strategy.init(jax.random.key(0))
  seen = [state.params["discriminator"]]
  fn = jax.jit(strategy.phases[-1].step)
  for t in range(3):
    batch = pipeline.batch_at(grid.train, jax.random.key(7), jnp.int32(t), 32)
    state, _ = fn(state, batch)
    seen.append(state.params["discriminator"])
  want = jax.tree.map(lambda *xs: np.mean(np.stack(xs), axis=0), *seen)
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(state.extras["historical"]
                                                         ["discriminator"])):
    np.testing.assert_allclose(np.asarray(b), a, rtol=1e-5, atol=1e-7)


def test_ema_generator_is_used_for_sampling(tiny, tmp_path):
  from aegan_jax import train
  config = tiny(strategy="gan", ema_decay=0.9, steps=6, checkpoint_every=6, sample_every=6,
                eval_every=0)
  state = train.train_and_evaluate(config, str(tmp_path / "w"))
  ema, live = state.extras["ema_generator"], state.params["generator"]
  assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(ema), jax.tree.leaves(live)))
  # Six updates from the common start: ema - start = sum of 0.1 * 0.9^(6-t) (live_t - start).
  strategy = strategies.build(config, data.load("mnist5k", config.data_dir).spec)
  key = jax.random.key(3)
  with_ema = strategy.generate(state, key, 4)
  without = strategy.generate(state.replace(extras={}), key, 4)
  assert not np.allclose(np.asarray(with_ema), np.asarray(without))


def test_feature_matching_changes_the_generator_objective():
  _, grid, fm = _grid_strategy(feature_matching=True)
  _, _, plain = _grid_strategy()
  _, m_fm = _run(fm, grid, 1)
  _, m_plain = _run(plain, grid, 1)
  # Same networks and data, different G objective: a squared distance is >= 0.
  assert float(m_fm["g_loss"]) >= 0 and float(m_fm["g_loss"]) != float(m_plain["g_loss"])


@pytest.mark.parametrize("kw,message", [
    (dict(loss="wgan"), "--loss=wgan needs a Lipschitz critic"),
    (dict(loss="hinge", label_smoothing=0.1), "--label_smoothing smooths the targets"),
    (dict(strategy="began", loss="hinge"), "--loss does not apply"),
    (dict(strategy="gan", began_gamma=0.7), "--began_gamma is a hyperparameter of "
                                            "--strategy=began"),
    (dict(strategy="gan", encoder_feature_weight=1.0), "--encoder_feature_weight does not "
                                                       "apply to --strategy=gan"),
    (dict(strategy="began", feature_matching=True), "--feature_matching does not apply"),
    (dict(strategy="veegan", loss="hinge"), "veegan"),
])
def test_meaningless_combinations_are_refused(kw, message):
  with pytest.raises(UserError, match=re.escape(message)):
    strategies.check(Config(**kw))


@pytest.mark.parametrize("name", ["gan", "ae_pretrain"])
def test_sgd_generator_steps_by_its_gradient(name):
  """--g_optimizer=sgd: G's step is exactly g_lr times its gradient (norm g_lr x g_grad_norm),
  where Adam's first step is the same size whatever the gradient's scale."""
  grid = data.load("grid")
  sizes = {}
  for opt in ("sgd", "adam"):
    ae = dict(code_dim=2, pretrain_steps=5) if name == "ae_pretrain" else {}
    config = Config(dataset="grid", strategy=name, mlp_hidden=(16,), latent_dim=2, steps=2,
                    batch_size=32, g_lr=0.05, g_optimizer=opt, **ae)
    strategy = strategies.build(config, grid.spec)
    _, before, _ = run_steps(strategy, grid, 32, strategy.total_steps - 1)
    _, after, history = run_steps(strategy, grid, 32, strategy.total_steps)
    moved = optax.tree.norm(jax.tree.map(jnp.subtract, after.params["generator"],
                                         before.params["generator"]))
    sizes[opt] = (float(moved), 0.05 * float(history[-1]["g_grad_norm"]))
  np.testing.assert_allclose(*sizes["sgd"], rtol=1e-4)
  assert abs(sizes["adam"][0] - sizes["adam"][1]) > 0.1 * sizes["adam"][1], sizes


def test_a_phase_step_keeps_the_generator_ema():
  """The EMA is part of the adversarial step itself: one step called outside the trainer
  leaves ema = decay * old + (1 - decay) * new generator weights."""
  grid = data.load("grid")
  config = Config(dataset="grid", strategy="gan", mlp_hidden=(16,), latent_dim=2, steps=1,
                  batch_size=32, ema_decay=0.75)
  strategy = strategies.build(config, grid.spec)
  first, after, _ = run_steps(strategy, grid, 32, 1)
  want = jax.tree.map(lambda old, new: 0.75 * old + 0.25 * new, first.params["generator"],
                      after.params["generator"])
  for a, b in zip(jax.tree.leaves(after.extras["ema_generator"]), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert not all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(after.extras["ema_generator"]), jax.tree.leaves(after.params["generator"])))
