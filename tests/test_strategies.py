"""Every registered strategy: its steps train every network it owns, on 2-D points and on
digits with both archs, and its option checks refuse what it cannot use."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import data, strategies
from aegan_jax.config import Config
from aegan_jax.data import pipeline

NAMES = strategies.STRATEGIES.names()


def run_steps(strategy, dataset, batch_size: int, num_steps: int):
  """Runs the strategy's phases for `num_steps` steps in all (begin hooks included), the way
  the trainer does; returns (first state, final state, the metrics of every step)."""
  state = strategy.init(jax.random.key(0))
  first = jax.tree.map(np.asarray, state)
  if strategy.phases[0].begin is not None:
    state = strategy.phases[0].begin(state, dataset)
  fns = {p.name: jax.jit(p.step) for p in strategy.phases}
  history = []
  for step in range(num_steps):
    phase = strategy.phase_at(step)
    if step == strategy.phase_start(phase) and step and phase.begin is not None:
      state = phase.begin(state, dataset)
    batch = pipeline.batch_at(dataset.train, jax.random.key(7), jnp.int32(step), batch_size)
    state, metrics = fns[phase.name](state, batch)
    history.append(jax.device_get(metrics))
  return first, state, history


@pytest.fixture(scope="module")
def grid():
  return data.load("grid")


@pytest.mark.parametrize("name", NAMES)
def test_few_steps_on_grid_change_every_network(name, grid):
  # The 2-D grid allows AE discriminators a 1-D bottleneck and aae codes of at most 2-D.
  config = Config(dataset="grid", strategy=name, mlp_hidden=(32,),
                  latent_dim=2 if name == "aae" else 4,
                  code_dim=1 if name in ("ebgan", "began") else 4,
                  steps=3, pretrain_steps=3, batch_size=64)
  strategy = strategies.build(config, grid.spec)
  first, state, history = run_steps(strategy, grid, 64, strategy.total_steps)
  assert int(state.step) == strategy.total_steps
  for network, params in state.params.items():
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
      old = dict(jax.tree_util.tree_leaves_with_path(first.params[network])).get(path)
      assert old is not None and not np.allclose(np.asarray(leaf), old), (
          f"{name}: {network}{jax.tree_util.keystr(path)} did not change")
  for metrics in history:
    for k, v in metrics.items():
      assert np.all(np.isfinite(v)), f"{name}: {k} = {v}"


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
@pytest.mark.parametrize("name", NAMES)
def test_50_steps_on_mnist5k(name, arch, tiny, mnist5k):
  config = tiny(strategy=name, arch=arch, dcgan_channels=8, mlp_hidden=(64,), steps=25,
                pretrain_steps=25)
  if name != "ae_pretrain":
    config = config.replace(steps=50)
  strategy = strategies.build(config, mnist5k.spec)
  _, state, history = run_steps(strategy, mnist5k, 16, strategy.total_steps)
  assert int(state.step) == 50
  assert all(np.all(np.isfinite(v)) for m in history for v in m.values())
  images = strategy.generate(state, jax.random.key(1), 4)
  assert images.shape == (4, 28, 28, 1)
  assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
  if strategy.has_autoencoder:
    x = pipeline.to_float(mnist5k.train["image"][:4])
    assert strategy.reconstruct(state, x, jax.random.key(2)).shape == x.shape
