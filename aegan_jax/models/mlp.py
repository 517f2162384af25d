"""Fully connected networks: the seed's (Dense 128 relu) and the 2-D mixtures' published ones.

Encoder: (x[, noise]) -> hidden layers -> code h.  Decoder: (h[, z]) -> hidden layers -> one
logit (or value) per output number; the Generator applies the sigmoid for images.
Discriminator: x -> hidden layers -> 1 logit (optionally spectrally normalized, with minibatch
discrimination before the last layer; `with_features` also returns a hidden layer, for
feature matching and VAE-GAN's learned similarity).

What the published 2-D setups need, each a flag (config.py): separate widths for the three
roles (--mlp_hidden, --e_hidden, --d_hidden); tanh hidden layers (the Unrolled GAN and GDPP
code); maxout discriminator units (the PacGAN and ALI code: 5 pieces); BatchNorm in the
generator and encoder, with no bias before it (PacGAN, ALI); and their weight initializations
(orthogonal with gain 1.4, or N(0, 0.02)).
"""

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aegan_jax.models import ARCHS, Arch, join_noise
from aegan_jax.models.layers import MinibatchDiscrimination, maybe_sn

# Gains and scales as in the papers' code (tf.orthogonal_initializer(gain=1.4) in the Unrolled
# GAN, GDPP and VEEGAN notebooks; IsotropicGaussian(0.02) in the PacGAN and ALI code).
KERNEL_INITS = {
    "default": nn.initializers.lecun_normal(),
    "orthogonal": nn.initializers.orthogonal(scale=1.4),
    "normal": nn.initializers.normal(0.02),
}
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh,
               "leaky_relu": lambda h: nn.leaky_relu(h, 0.2)}  # slope 0.2, as in DCGAN's D


def hidden_stack(h: jax.Array, widths: Sequence[int], activation: str, batchnorm: bool,
                 init: str, train: bool, dtype) -> jax.Array:
  """Dense -> [BatchNorm] -> activation for each width; call inside a compact module."""
  for width in widths:
    h = nn.Dense(width, use_bias=not batchnorm, kernel_init=KERNEL_INITS[init], dtype=dtype)(h)
    if batchnorm:
      h = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=dtype)(h)
    h = ACTIVATIONS[activation](h)
  return h


class Maxout(nn.Module):
  """max over `pieces` affine maps per unit (Goodfellow et al. 2013)."""
  width: int
  pieces: int
  kernel_init: Any = nn.initializers.lecun_normal()
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = nn.Dense(self.width * self.pieces, kernel_init=self.kernel_init, dtype=self.dtype)(x)
    return jnp.max(h.reshape(*h.shape[:-1], self.width, self.pieces), axis=-1)


class MLPEncoder(nn.Module):
  hidden: Sequence[int]
  code_dim: int
  activation: str = "relu"
  batchnorm: bool = False
  weight_init: str = "default"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, noise: Optional[jax.Array] = None,
               train: bool = False) -> jax.Array:
    """`noise` (a stochastic encoder's input, e.g. ALI's) joins the flattened x."""
    h = join_noise(x.reshape(x.shape[0], -1), noise)
    h = hidden_stack(h, self.hidden, self.activation, self.batchnorm, self.weight_init, train,
                     self.dtype)
    out = nn.Dense(self.code_dim, kernel_init=KERNEL_INITS[self.weight_init], dtype=self.dtype)(h)
    return out.astype(jnp.float32)


class MLPDecoder(nn.Module):
  hidden: Sequence[int]
  out_shape: tuple[int, ...]
  activation: str = "relu"
  batchnorm: bool = False
  weight_init: str = "default"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h: jax.Array, noise: Optional[jax.Array] = None,
               train: bool = False) -> jax.Array:
    h = hidden_stack(join_noise(h, noise), self.hidden, self.activation, self.batchnorm,
                     self.weight_init, train, self.dtype)
    logits = nn.Dense(math.prod(self.out_shape), kernel_init=KERNEL_INITS[self.weight_init],
                      dtype=self.dtype)(h)
    return logits.reshape(h.shape[0], *self.out_shape).astype(jnp.float32)


class MLPDiscriminator(nn.Module):
  """Also the latent discriminator of aae and the head of the joint (x, z) discriminator."""
  hidden: Sequence[int]
  spectral_norm: bool = False
  minibatch_discrimination: bool = False
  activation: str = "relu"   # relu, tanh, leaky_relu or maxout
  maxout_pieces: int = 5
  weight_init: str = "default"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, with_features=False):
    """with_features: True or 'last' also returns the last hidden layer (feature matching);
    'middle' the middle one, layer ceil(L / 2) of L (VAE-GAN's Dis_l)."""
    kernel_init = KERNEL_INITS[self.weight_init]
    dense = lambda width: maybe_sn(nn.Dense(width, kernel_init=kernel_init, dtype=self.dtype),
                                   self.spectral_norm, train)
    h = x.reshape(x.shape[0], -1)
    layers = []
    for width in self.hidden:
      if self.activation == "maxout":
        h = Maxout(width, self.maxout_pieces, kernel_init, self.dtype)(h)
      else:
        h = ACTIVATIONS[self.activation](dense(width)(h))
      layers.append(h)
    if self.minibatch_discrimination:
      h = MinibatchDiscrimination()(h)
    logits = dense(1)(h)[:, 0].astype(jnp.float32)
    if not with_features:
      return logits
    features = layers[(len(layers) + 1) // 2 - 1] if with_features == "middle" else h
    return logits, features.astype(jnp.float32)


def _widths(widths: Sequence[int], default: Sequence[int]) -> tuple[int, ...]:
  return tuple(widths) or tuple(default)


def encoder(c, shape) -> MLPEncoder:
  # The encoder mirrors the decoder: its layers narrow as the decoder's widen.
  return MLPEncoder(_widths(c.e_hidden, c.mlp_hidden), c.code_dim, c.g_activation,
                    c.mlp_batchnorm, c.weight_init, jnp.dtype(c.dtype))


def decoder(c, shape) -> MLPDecoder:
  return MLPDecoder(tuple(reversed(c.mlp_hidden)), shape, c.g_activation, c.mlp_batchnorm,
                    c.weight_init, jnp.dtype(c.dtype))


def discriminator(c, shape=None) -> MLPDiscriminator:
  return MLPDiscriminator(_widths(c.d_hidden, c.mlp_hidden), c.spectral_norm,
                          c.minibatch_discrimination, c.d_activation, c.maxout_pieces,
                          c.weight_init, jnp.dtype(c.dtype))


ARCHS.register("mlp")(Arch(encoder=encoder, decoder=decoder, discriminator=discriminator))
