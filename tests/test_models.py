"""Output shapes and ranges of every network in both archs."""

import jax
import jax.numpy as jnp
import pytest

from aegan_jax.config import Config
from aegan_jax.data import Spec
from aegan_jax.models import apply_model
from aegan_jax.strategies.base import build_networks, init_networks


@pytest.mark.parametrize("arch,shape", [("mlp", (28, 28, 1)), ("dcgan", (28, 28, 1)),
                                        ("dcgan", (32, 32, 3)), ("mlp", (32, 32, 3))])
@pytest.mark.parametrize("decoder_noise_dim", [0, 8])
def test_shapes_and_ranges(arch, shape, decoder_noise_dim):
  config = Config(arch=arch, code_dim=16, latent_dim=12, decoder_noise_dim=decoder_noise_dim,
                  dcgan_channels=8, mlp_hidden=(32,))
  nets = build_networks(config, Spec(shape), autoencoder=True)
  params, bs = init_networks(nets, jax.random.key(0), shape)
  x = jax.random.uniform(jax.random.key(1), (5, *shape))
  z, noise = nets.latents(jax.random.key(2), 5)
  assert z.shape == (5, 12)
  assert (noise is None) == (decoder_noise_dim == 0)

  h, _ = apply_model(nets.encoder, params["encoder"], bs["encoder"], x, train=False)
  assert h.shape == (5, 16)
  logits, _ = apply_model(nets.decoder, params["decoder"], bs["decoder"], h, noise, train=True)
  assert logits.shape == (5, *shape)
  images, _ = apply_model(nets.generator, params["generator"], bs["generator"], z, noise,
                          train=False)
  assert images.shape == (5, *shape)
  assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
  d, _ = apply_model(nets.discriminator, params["discriminator"], bs["discriminator"], x,
                     train=True)
  assert d.shape == (5,)
  # The generator of an autoencoder strategy maps z into the code space, then decodes.
  assert params["generator"]["mapping"]["kernel"].shape == (12, 16)


def test_plain_gan_generator_feeds_noise_to_decoder():
  config = Config(arch="mlp", latent_dim=10, mlp_hidden=(32,))
  nets = build_networks(config, Spec((28, 28, 1)), autoencoder=False)
  params, _ = init_networks(nets, jax.random.key(0), (28, 28, 1))
  assert "mapping" not in params["generator"]
  assert params["generator"]["decoder"]["Dense_0"]["kernel"].shape == (10, 32)
  assert nets.encoder is None


def test_dcgan_batchnorm_updates_in_train_mode_only():
  config = Config(arch="dcgan", dcgan_channels=4, code_dim=8, latent_dim=8)
  nets = build_networks(config, Spec((28, 28, 1)), autoencoder=False)
  params, bs = init_networks(nets, jax.random.key(0), (28, 28, 1))
  z = jax.random.normal(jax.random.key(1), (4, 8))
  _, new_bs = apply_model(nets.generator, params["generator"], bs["generator"], z, train=True)
  _, same_bs = apply_model(nets.generator, params["generator"], bs["generator"], z, train=False)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), bs["generator"], new_bs)
  assert any(jax.tree.leaves(changed))
  assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.all(a == b)),
                                          bs["generator"], same_bs)))


def test_real_valued_data_gets_a_linear_generator():
  config = Config(arch="mlp", latent_dim=4, code_dim=4, mlp_hidden=(16,))
  nets = build_networks(config, Spec((2,), unit_range=False), autoencoder=True)
  params, bs = init_networks(nets, jax.random.key(0), (2,))
  z = 50.0 * jax.random.normal(jax.random.key(1), (64, 4))
  x, _ = apply_model(nets.generator, params["generator"], bs["generator"], z, train=False)
  assert x.shape == (64, 2)
  assert float(jnp.min(x)) < 0.0 or float(jnp.max(x)) > 1.0  # not squashed into [0, 1]
