"""DCGAN-style convolutional networks for 28x28 and 32x32 images with 1 or 3 channels.

Encoder / Discriminator: Conv(c, 4x4, stride 2) lrelu(0.2) -> Conv(2c, 4x4, stride 2) lrelu(0.2)
-> Dense(out).  Decoder: Dense(s*s*2c, no bias) -> BN -> relu -> ConvTranspose(c, 4x4, stride 2,
no bias) -> BN -> relu -> ConvTranspose(channels, 4x4, stride 2) -> logits, with s = size / 4.
No BatchNorm in the discriminator: it sees real and fake examples in one batch, and batch
statistics would leak between the two. The strided convolutions are models/conv.py's, which
compute flax's Conv / ConvTranspose in the formulation the backend runs fastest (`impl`,
--conv_impl); the parameter names are flax's, so checkpoints do not depend on it.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from aegan_jax.errors import UserError
from aegan_jax.models import ARCHS, Arch, join_noise
from aegan_jax.models.conv import Conv4x4s2, batch_pieces_ok, resolve
from aegan_jax.models.layers import MinibatchDiscrimination, maybe_sn


# Rows per pass through the convolutional body under the fast (CPU) formulation.
MICROBATCH = 64


def conv_features(x: jax.Array, channels: int, spectral_norm: bool, train: bool,
                  impl: str, dtype, middle: bool = False):
  """Conv(c) lrelu -> Conv(2c) lrelu -> flattened; call inside a compact module.

  `middle`: also the first layer's flattened activations, as (last, first).
  """
  sn = lambda layer: maybe_sn(layer, spectral_norm, train)
  conv0 = sn(Conv4x4s2(channels, impl=impl, dtype=dtype, name="Conv_0"))
  conv1 = sn(Conv4x4s2(2 * channels, impl=impl, dtype=dtype, name="Conv_1"))
  flat = lambda h: h.reshape(h.shape[0], -1)

  def body(x):
    h0 = nn.leaky_relu(conv0(x), 0.2)
    h = flat(nn.leaky_relu(conv1(h0), 0.2))
    return (h, flat(h0)) if middle else h

  n, m = x.shape[0], MICROBATCH
  # Each example goes through these layers alone, so the batch may go through in pieces: the
  # same numbers, and each piece's activations stay in cache from one layer to the next.
  # (Not with spectral norm, whose power iteration would then run once a piece.)
  if m and resolve(impl) == "fast" and not spectral_norm and batch_pieces_ok(n, m):
    pieces = [body(x[i:i + m]) for i in range(0, n, m)]
    return jax.tree.map(lambda *p: jnp.concatenate(p), *pieces)
  return body(x)


class ConvNet(nn.Module):
  """The encoder: the discriminator's body with `out_dim` outputs."""
  channels: int
  out_dim: int
  impl: str = "auto"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, noise: Optional[jax.Array] = None,
               train: bool = False) -> jax.Array:
    """`noise` (a stochastic encoder's input, e.g. ALI's) joins the convolutional features."""
    h = join_noise(conv_features(x, self.channels, False, train, self.impl, self.dtype), noise)
    return nn.Dense(self.out_dim, dtype=self.dtype)(h).astype(jnp.float32)


class DCGANDiscriminator(nn.Module):
  channels: int
  spectral_norm: bool = False
  minibatch_discrimination: bool = False
  impl: str = "auto"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, with_features=False):
    """with_features: True or 'last' -> (logits, the last hidden layer); 'middle' ->
    (logits, the first convolution's activations: Larsen et al.'s Dis_l)."""
    middle = with_features == "middle"
    h = conv_features(x, self.channels, self.spectral_norm, train, self.impl, self.dtype,
                      middle=middle)
    h, h0 = h if middle else (h, None)
    if self.minibatch_discrimination:
      h = MinibatchDiscrimination()(h)
    logits = maybe_sn(nn.Dense(1, dtype=self.dtype), self.spectral_norm, train)(h)[:, 0]
    logits = logits.astype(jnp.float32)
    if not with_features:
      return logits
    return logits, (h0 if middle else h).astype(jnp.float32)


class DCGANDecoder(nn.Module):
  channels: int
  out_shape: tuple[int, int, int]
  impl: str = "auto"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h: jax.Array, noise: Optional[jax.Array] = None,
               train: bool = False) -> jax.Array:
    h = join_noise(h, noise)
    size, _, out_channels = self.out_shape
    s, c = size // 4, 2 * self.channels
    # BatchNorm's statistics are float32 whatever the dtype (flax reduces in float32).
    bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)
    up = lambda f, **kw: Conv4x4s2(f, transpose=True, impl=self.impl, dtype=self.dtype, **kw)
    x = nn.Dense(s * s * c, use_bias=False, dtype=self.dtype)(h)
    x = nn.relu(bn()(x)).reshape(h.shape[0], s, s, c)
    x = nn.relu(bn()(up(self.channels, use_bias=False, name="ConvTranspose_0")(x)))
    return up(out_channels, name="ConvTranspose_1")(x).astype(jnp.float32)


def _check_shape(shape: tuple[int, ...]) -> None:
  if len(shape) != 3:
    raise UserError(f"--arch=dcgan takes images; this dataset's examples have shape {shape}: "
                    f"use --arch=mlp")
  h, w, c = shape
  if h != w or h not in (28, 32) or c not in (1, 3):
    raise UserError(f"--arch=dcgan takes 28x28 or 32x32 images with 1 or 3 channels, "
                    f"the dataset has {h}x{w}x{c}; use --arch=mlp")


ARCHS.register("dcgan")(Arch(
    encoder=lambda c, shape: ConvNet(c.dcgan_channels, c.code_dim, c.conv_impl,
                                     jnp.dtype(c.dtype)),
    decoder=lambda c, shape: DCGANDecoder(c.dcgan_channels, shape, c.conv_impl,
                                          jnp.dtype(c.dtype)),
    discriminator=lambda c, shape: DCGANDiscriminator(c.dcgan_channels, c.spectral_norm,
                                                      c.minibatch_discrimination, c.conv_impl,
                                                      jnp.dtype(c.dtype)),
    check_shape=_check_shape,
))
