"""Discriminators built from an arch's parts, for the strategies whose D is not a classifier of x.

- JointDiscriminator (ALI/BiGAN, VEEGAN): D(x, z). x goes through the arch's encoder to
  `features` numbers, z joins them, and an MLP head gives the logit. Works for every arch.
- AutoencoderDiscriminator (EBGAN, BEGAN): D is an autoencoder, Dec_D(Enc_D(x)), returned in
  data space (sigmoid for images); the strategy turns it into an energy.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aegan_jax.models.mlp import MLPDiscriminator


class JointDiscriminator(nn.Module):
  x_net: nn.Module            # an arch encoder: x -> [B, features]
  hidden: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, pair, train: bool = False) -> jax.Array:
    x, z = pair
    fx = self.x_net(x, train=train)
    head = MLPDiscriminator(tuple(self.hidden), dtype=self.dtype)
    return head(jnp.concatenate([fx, z], axis=-1), train=train)


class AutoencoderDiscriminator(nn.Module):
  encoder: nn.Module
  decoder: nn.Module
  unit_range: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    """(reconstruction of x in data space, code)."""
    code = self.encoder(x, train=train)
    out = self.decoder(code, None, train=train)
    return (nn.sigmoid(out) if self.unit_range else out), code
