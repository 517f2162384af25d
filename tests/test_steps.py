"""The two pure steps and the ae_pretrain transition, on real digits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import strategies
from aegan_jax.data import pipeline
from aegan_jax.losses import ADVERSARIAL
from aegan_jax.models import apply_model
from aegan_jax.state import apply_gradients
from aegan_jax.code_prior import mixture_map


def _jit(step):
  return jax.jit(step, donate_argnums=(0,))


def _batch(dataset, step, size=64):
  return pipeline.batch_at(dataset.train, jax.random.key(7), jnp.int32(step), size)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_ae_steps_lower_reconstruction_loss(tiny, mnist5k, arch):
  config = tiny(arch=arch, dcgan_channels=8)
  strategy = strategies.build(config, mnist5k.spec)
  state = strategy.init(jax.random.key(0))
  x = pipeline.to_float(jnp.asarray(mnist5k.test_images[:256]))
  key = jax.random.key(1)
  before = float(jnp.mean(jnp.square(strategy.reconstruct(state, x, key) - x)))
  step = _jit(strategy.phases[0].step)
  for t in range(40):
    state, metrics = step(state, _batch(mnist5k, t))
  after = float(jnp.mean(jnp.square(strategy.reconstruct(state, x, key) - x)))
  assert int(state.step) == 40
  assert after < 0.7 * before, (before, after)


def test_generator_starts_from_the_pretrained_decoder(tiny, mnist5k):
  config = tiny(code_dim=16, latent_dim=16)
  strategy = strategies.build(config, mnist5k.spec)
  state = strategy.init(jax.random.key(0))
  step = _jit(strategy.phases[0].step)
  for t in range(20):
    state, _ = step(state, _batch(mnist5k, t))
  gan_phase = strategy.phases[1]
  state = gan_phase.begin(state, mnist5k)

  gen, dec = state.params["generator"]["decoder"], state.params["decoder"]
  assert jax.tree.structure(gen) == jax.tree.structure(dec)
  for a, b in zip(jax.tree.leaves(gen), jax.tree.leaves(dec)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The mapping puts N(0, I) noise where the encoder puts the training set.
  codes = np.concatenate([np.asarray(apply_model(strategy.nets.encoder, state.params["encoder"],
                                                 {}, c, train=False)[0])
                          for c in mnist5k.train_chunks(1000)])
  m = state.params["generator"]["mapping"]
  np.testing.assert_allclose(np.asarray(m["bias"]), codes.mean(0), rtol=1e-4, atol=1e-5)
  k = np.asarray(m["kernel"], np.float64)
  np.testing.assert_allclose(k.T @ k, np.cov(codes, rowvar=False), rtol=1e-3, atol=1e-5)
  # And the generator's first samples are the decoder's outputs on those codes.
  z, _ = strategy.nets.latents(jax.random.key(3), 4)
  h = z @ m["kernel"] + m["bias"]
  direct = jax.nn.sigmoid(strategy.nets.decoder.apply({"params": dec}, h))
  via_g = strategy.nets.generator.apply({"params": state.params["generator"]}, z)
  np.testing.assert_allclose(np.asarray(via_g), np.asarray(direct), atol=1e-6)


def fit_gaussian_map(codes, latent_dim):
  """The single-Gaussian code map (one component): (kernel, bias)."""
  m = mixture_map(codes, latent_dim, 1)
  return m["kernel"], m["bias"]


def test_fit_gaussian_map_recovers_mean_and_covariance():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(5, 5))
  codes = rng.normal(size=(20000, 5)) @ a + np.arange(5)
  kernel, bias = fit_gaussian_map(codes, latent_dim=5)
  np.testing.assert_allclose(bias, codes.mean(0), rtol=1e-5)
  np.testing.assert_allclose(kernel.T.astype(np.float64) @ kernel, np.cov(codes, rowvar=False),
                             rtol=1e-4, atol=1e-4)
  # Fewer noise dimensions than code dimensions: the principal axes (probabilistic PCA).
  kernel2, _ = fit_gaussian_map(codes, latent_dim=2)
  evals = np.sort(np.linalg.eigvalsh(np.cov(codes, rowvar=False)))[::-1]
  np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(kernel2.T @ kernel2))[::-1][:2],
                             evals[:2], rtol=1e-4)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_gan_step_matches_two_pass_reference(tiny, mnist5k, arch):
  """The single-vjp gan_step equals the textbook version with a second generator pass."""
  config = tiny(strategy="gan", arch=arch, dcgan_channels=8, loss="non_saturating")
  strategy = strategies.build(config, mnist5k.spec)
  nets = strategy.nets
  state = strategy.init(jax.random.key(0))
  batch = _batch(mnist5k, 0, size=16)
  g_tx = d_tx = __import__("optax").adam(config.g_lr, b1=config.adam_b1, b2=config.adam_b2)
  loss = ADVERSARIAL.get(config.loss)

  # Reference, written out: D step on fakes from G, then G step with a fresh G forward pass.
  z, noise = nets.latents(jax.random.split(state.step_key())[0], 16)  # gan_step's z key
  p, bs = state.params, state.batch_stats
  fake, g_bs = apply_model(nets.generator, p["generator"], bs["generator"], z, noise, train=True)

  def d_obj(dp):
    r, _ = apply_model(nets.discriminator, dp, {}, batch["image"], train=True)
    f, _ = apply_model(nets.discriminator, dp, {}, jax.lax.stop_gradient(fake), train=True)
    return loss.d_loss(r, f)
  d_params, _ = apply_gradients(d_tx, p["discriminator"], state.opt_state["d"],
                                jax.grad(d_obj)(p["discriminator"]))

  def g_obj(gp):
    x, _ = apply_model(nets.generator, gp, bs["generator"], z, noise, train=True)
    f, _ = apply_model(nets.discriminator, d_params, {}, x, train=True)
    return loss.g_loss(f)
  g_params, _ = apply_gradients(g_tx, p["generator"], state.opt_state["g"],
                                jax.grad(g_obj)(p["generator"]))

  new_state, metrics = jax.jit(strategy.phases[0].step)(state, batch)
  for want, got in [(d_params, new_state.params["discriminator"]),
                    (g_params, new_state.params["generator"]), (g_bs,
                                                                new_state.batch_stats["generator"])]:
    for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
  assert int(new_state.step) == 1
  assert set(metrics) >= {"d_loss", "g_loss", "d_real", "d_fake"}


def test_gan_phase_trains_only_generator_and_discriminator(tiny, mnist5k):
  config = tiny()
  strategy = strategies.build(config, mnist5k.spec)
  state = strategy.init(jax.random.key(0))
  state = strategy.phases[1].begin(state, mnist5k)
  before = jax.device_get(state.params)
  step = _jit(strategy.phases[1].step)
  for t in range(3):
    state, _ = step(state, _batch(mnist5k, t))
  after = jax.device_get(state.params)
  changed = lambda name: any(not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(before[name]), jax.tree.leaves(after[name])))
  assert changed("generator") and changed("discriminator")
  assert not changed("encoder") and not changed("decoder")


def test_gaussian_code_mapping_stays_fixed(tiny, mnist5k):
  config = tiny(code_mapping="gaussian")
  strategy = strategies.build(config, mnist5k.spec)
  state = strategy.phases[1].begin(strategy.init(jax.random.key(0)), mnist5k)
  mapping = jax.device_get(state.params["generator"]["mapping"])
  decoder = jax.device_get(state.params["generator"]["decoder"])
  step = _jit(strategy.phases[1].step)
  for t in range(3):
    state, _ = step(state, _batch(mnist5k, t))
  for a, b in zip(jax.tree.leaves(mapping), jax.tree.leaves(state.params["generator"]["mapping"])):
    np.testing.assert_array_equal(a, np.asarray(b))
  assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(
      jax.tree.leaves(decoder), jax.tree.leaves(state.params["generator"]["decoder"])))
