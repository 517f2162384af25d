"""The seed's fully connected networks (Dense 128 relu, widths configurable).

Encoder: x -> Dense(w) relu ... -> code h.  Decoder: (h[, z]) -> Dense(w) relu ... -> logits of
every pixel (the Generator applies the sigmoid).  Discriminator: x -> Dense(w) relu ... -> 1 logit (optionally spectrally normalized, with
minibatch discrimination before the last layer; `with_features` also returns the last hidden
layer, for feature matching and VAE-GAN's learned similarity).
"""

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aegan_jax.models import ARCHS, Arch, join_noise
from aegan_jax.models.layers import MinibatchDiscrimination, maybe_sn


class MLPEncoder(nn.Module):
  hidden: Sequence[int]
  code_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width, dtype=self.dtype)(h))
    return nn.Dense(self.code_dim, dtype=self.dtype)(h).astype(jnp.float32)


class MLPDecoder(nn.Module):
  hidden: Sequence[int]
  out_shape: tuple[int, int, int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h: jax.Array, noise: Optional[jax.Array] = None,
               train: bool = False) -> jax.Array:
    h = join_noise(h, noise)
    for width in reversed(self.hidden):  # mirror of the encoder
      h = nn.relu(nn.Dense(width, dtype=self.dtype)(h))
    logits = nn.Dense(math.prod(self.out_shape), dtype=self.dtype)(h)
    return logits.reshape(h.shape[0], *self.out_shape).astype(jnp.float32)


class MLPDiscriminator(nn.Module):
  """Also the latent discriminator of aae and the head of the joint (x, z) discriminator."""
  hidden: Sequence[int]
  spectral_norm: bool = False
  minibatch_discrimination: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, with_features: bool = False):
    dense = lambda width: maybe_sn(nn.Dense(width, dtype=self.dtype), self.spectral_norm, train)
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.relu(dense(width)(h))
    if self.minibatch_discrimination:
      h = MinibatchDiscrimination()(h)
    logits, h = dense(1)(h)[:, 0].astype(jnp.float32), h.astype(jnp.float32)
    return (logits, h) if with_features else logits


ARCHS.register("mlp")(Arch(
    encoder=lambda c, shape: MLPEncoder(tuple(c.mlp_hidden), c.code_dim, jnp.dtype(c.dtype)),
    decoder=lambda c, shape: MLPDecoder(tuple(c.mlp_hidden), shape, jnp.dtype(c.dtype)),
    discriminator=lambda c, shape: MLPDiscriminator(tuple(c.mlp_hidden), c.spectral_norm,
                                                    c.minibatch_discrimination,
                                                    jnp.dtype(c.dtype)),
))
