"""Discriminators built from an arch's parts, for the strategies whose D is not a classifier of x.

- JointDiscriminator (ALI/BiGAN, VEEGAN): D(x, z). z joins x (flattened, as in the ALI and
  VEEGAN code on vectors) or, with an `x_net`, x's features from a convolutional body, and an
  MLP head gives the logit. Works for every arch.
- AutoencoderDiscriminator (EBGAN, BEGAN): D is an autoencoder, Dec_D(Enc_D(x)), returned in
  data space (sigmoid for images); the strategy turns it into an energy.
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from aegan_jax.models.mlp import MLPDiscriminator


class JointDiscriminator(nn.Module):
  head: MLPDiscriminator                # [x or its features, z] -> logit
  x_net: Optional[nn.Module] = None     # an arch encoder: x -> [B, features]; None: x itself

  @nn.compact
  def __call__(self, pair, train: bool = False) -> jax.Array:
    x, z = pair
    fx = x.reshape(x.shape[0], -1) if self.x_net is None else self.x_net(x, train=train)
    return self.head(jnp.concatenate([fx, z], axis=-1), train=train)


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
