"""The Gaussian-mixture code prior: the EM fit, the generator's mixture map, ae_pretrain with it."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import code_prior, data, strategies, train
from aegan_jax.checkpoint import Checkpointer
from aegan_jax.config import Config
from aegan_jax.errors import UserError
from aegan_jax.models.generator import MixtureMap
from tests.test_strategies import run_steps


def _clusters(seed=0):
  rng = np.random.default_rng(seed)
  means = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5]], float)
  weights = np.array([0.1, 0.2, 0.3, 0.4])
  labels = rng.choice(4, size=4000, p=weights)
  return means, weights, means[labels] + 0.1 * rng.normal(size=(4000, 3))


def _log_likelihood(x, fit):
  weights, means, covs = fit
  log_p = code_prior._log_gaussians(x, means, covs) + np.log(weights)
  return float(np.mean(np.log(np.exp(log_p).sum(axis=1))))


def test_em_recovers_separated_clusters():
  means, weights, x = _clusters()
  w, m, c = code_prior.fit_mixture(x, 4, seed=0, restarts=3)
  order = np.argsort(m @ np.array([1.0, 10.0, 100.0]))  # match components to clusters
  np.testing.assert_allclose(m[order], means, atol=0.05)
  np.testing.assert_allclose(w[order], weights, atol=0.03)
  np.testing.assert_allclose(c[order], np.broadcast_to(0.01 * np.eye(3), (4, 3, 3)), atol=0.003)


def test_restarts_keep_the_most_likely_fit():
  _, _, x = _clusters(1)
  one = code_prior.fit_mixture(x, 6, seed=3, restarts=1)
  best = code_prior.fit_mixture(x, 6, seed=3, restarts=4)  # its first start is `one`'s
  assert _log_likelihood(x, best) >= _log_likelihood(x, one) - 1e-9


def test_mixture_map_draws_components_with_their_weights():
  bias = jnp.array([[-10.0, -10.0], [10.0, 10.0]])
  params = {"kernel": jnp.ones((2, 3, 2)), "bias": bias,
            "logits": jnp.log(jnp.array([0.25, 0.75]))}
  kz, ku = jax.random.split(jax.random.key(0))
  z = 0.01 * jax.random.normal(kz, (20000, 3))
  h = MixtureMap(code_dim=2, components=2).apply(
      {"params": params}, jnp.concatenate([z, jax.random.uniform(ku, (20000, 1))], axis=-1))
  upper = np.asarray(h[:, 0] > 0)
  assert abs(upper.mean() - 0.75) < 0.02
  # Within a component: bias + z @ kernel, here bias + sum(z) in each coordinate.
  np.testing.assert_allclose(np.asarray(h[upper][:, 0]), 10.0 + np.asarray(z[upper].sum(1)),
                             atol=1e-5)


def test_ae_pretrain_with_a_mixture_prior_trains():
  grid = data.load("grid")
  config = Config(dataset="grid", strategy="ae_pretrain", mlp_hidden=(32,), latent_dim=2,
                  code_dim=4, steps=3, pretrain_steps=30, batch_size=64, code_components=5,
                  code_fit_restarts=2, ae_lr_decay=True)
  strategy = strategies.build(config, grid.spec)
  _, state, history = run_steps(strategy, grid, 64, strategy.total_steps)
  mapping = state.params["generator"]["mapping"]
  assert mapping["kernel"].shape == (5, 2, 4) and mapping["logits"].shape == (5,)
  np.testing.assert_allclose(float(jax.nn.softmax(mapping["logits"]).sum()), 1.0, rtol=1e-5)
  samples = strategy.generate(state, jax.random.key(0), 100)
  assert samples.shape == (100, 2) and bool(jnp.all(jnp.isfinite(samples)))
  assert all(np.isfinite(v).all() for m in history for v in m.values())


def test_steps_zero_is_the_autoencoder_and_its_prior_alone(tmp_path):
  """--steps=0: pretraining, then the transition's fit, and no adversarial step: the final
  generator is the one a longer run starts its adversarial phase from, and the run ends with
  its samples and its evaluation."""
  common = dict(dataset="grid", strategy="ae_pretrain", mlp_hidden=(32,), latent_dim=2,
                code_dim=4, pretrain_steps=30, batch_size=64, code_components=5, log_every=10,
                sample_every=100, checkpoint_every=100, eval_every=100, eval_metrics="modes")
  alone = train.train_and_evaluate(Config(steps=0, **common), str(tmp_path / "alone"))
  train.train_and_evaluate(Config(steps=10, **common), str(tmp_path / "longer"))
  ckpt = Checkpointer(str(tmp_path / "longer"), 10)
  at_transition, _ = ckpt.restore_verified(30, jax.eval_shape(lambda: alone))
  for a, b in zip(jax.tree.leaves(alone.params["generator"]),
                  jax.tree.leaves(at_transition.params["generator"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert int(alone.step) == 30
  with open(tmp_path / "alone" / "summary.json") as f:
    summary = json.load(f)
  assert summary["evaluation"]["step"] == 30
  assert summary["evaluation"]["metrics"]["modes_captured"] >= 1
  assert os.path.exists(tmp_path / "alone" / "samples" / "final.png")
  with open(tmp_path / "alone" / "metrics.jsonl") as f:
    assert {json.loads(line)["phase"] for line in f} <= {"pretrain", "pretrain_eval", "eval"}
  with pytest.raises(UserError, match="--steps=0 leaves --strategy=gan nothing to train"):
    train.train_and_evaluate(Config(dataset="grid", strategy="gan", steps=0), str(tmp_path / "g"))
  assert not os.path.exists(tmp_path / "g" / "checkpoints")


def test_anchor_keeps_the_decoder_reconstructing_in_the_adversarial_phase():
  """--anchor_weight: the generator's decoder still reconstructs E(x) after adversarial steps
  that, without it, move it away (a large G learning rate makes the drift quick)."""
  from aegan_jax.models import apply_model
  grid = data.load("grid")
  errors = {}
  for weight in (0.0, 10.0):
    config = Config(dataset="grid", strategy="ae_pretrain", mlp_hidden=(32,), latent_dim=2,
                    code_dim=4, steps=40, pretrain_steps=60, batch_size=64, code_components=3,
                    g_lr=1e-2, anchor_weight=weight)
    strategy = strategies.build(config, grid.spec)
    _, state, history = run_steps(strategy, grid, 64, strategy.total_steps)
    if weight:
      assert all(np.isfinite(m["anchor_recon"]) for m in history[60:])
    x = jnp.asarray(grid.test_images[:512])
    h, _ = apply_model(strategy.nets.encoder, state.params["encoder"],
                       state.batch_stats["encoder"], x, train=False)
    out, _ = apply_model(strategy.nets.decoder, state.params["generator"]["decoder"], {}, h,
                         None, train=False)
    errors[weight] = float(jnp.mean(jnp.square(strategy.nets.output(out) - x)))
  assert errors[10.0] < 0.5 * errors[0.0], errors
  with pytest.raises(UserError, match="--anchor_weight is a hyperparameter of --strategy="
                                      "ae_pretrain, not gan"):
    strategies.build(Config(dataset="grid", strategy="gan", anchor_weight=1.0), grid.spec)


def test_d_warmup_holds_the_generator_while_d_trains():
  """--d_warmup_steps: between pretraining and the GAN phase, D trains and the generator
  (built at the transition) stays exactly as built; then the GAN phase moves it."""
  grid = data.load("grid")
  config = Config(dataset="grid", strategy="ae_pretrain", mlp_hidden=(32,), latent_dim=2,
                  code_dim=4, pretrain_steps=30, d_warmup_steps=10, steps=5, batch_size=64)
  strategy = strategies.build(config, grid.spec)
  assert [(p.name, p.num_steps) for p in strategy.phases] == [
      ("pretrain", 30), ("d_warmup", 10), ("gan", 5)]
  states = {n: run_steps(strategy, grid, 64, n)[1] for n in (31, 40, 45)}
  leaves = lambda n, net: jax.tree.leaves(states[n].params[net])
  assert all(np.array_equal(a, b) for a, b in zip(leaves(31, "generator"),
                                                  leaves(40, "generator")))
  assert not all(np.array_equal(a, b) for a, b in zip(leaves(31, "discriminator"),
                                                      leaves(40, "discriminator")))
  assert not all(np.array_equal(a, b) for a, b in zip(leaves(40, "generator"),
                                                      leaves(45, "generator")))
  with pytest.raises(UserError, match="--d_warmup_steps is a hyperparameter of --strategy="
                                      "ae_pretrain, not gan"):
    strategies.build(Config(dataset="grid", strategy="gan", d_warmup_steps=5), grid.spec)
