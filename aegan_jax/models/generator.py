"""The generator: noise -> (optionally) the code space -> a decoder -> images in [0, 1].

With `code_dim` set, an affine map (`mapping`) takes z to a code h, and the decoder is the
autoencoder's, so x' = Dec(mapping(z)[, z_dec]); ae_pretrain initializes both from the
pretrained autoencoder (with --code_components > 1 the mapping is one affine map per component
of a Gaussian mixture over the codes). Without it, z feeds the decoder directly (the plain GAN baseline).
The sigmoid lives here, not in the decoder, so reconstruction losses can use logits; for
real-valued data (unit_range=False, e.g. 2-D points) the output is linear.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp


class MixtureMap(nn.Module):
  """h = bias_k + z @ kernel_k, with component k drawn with probabilities softmax(logits).

  The generator's input then carries one more column, a uniform u that picks k by inverse CDF,
  so sampling stays a pure function of the input noise. The choice of k is discrete, so the
  mixture weights get no gradient: they stay as fitted; the maps themselves train.
  """
  code_dim: int
  components: int

  @nn.compact
  def __call__(self, z_u: jax.Array) -> jax.Array:
    z, u = z_u[:, :-1], z_u[:, -1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(batch_axis=(0,)),
                        (self.components, z.shape[-1], self.code_dim))
    bias = self.param("bias", nn.initializers.zeros, (self.components, self.code_dim))
    logits = self.param("logits", nn.initializers.zeros, (self.components,))
    cdf = jnp.cumsum(jax.nn.softmax(jax.lax.stop_gradient(logits)))
    k = jnp.clip(jnp.searchsorted(cdf, u), 0, self.components - 1)
    return bias[k] + jnp.einsum("bl,blc->bc", z, kernel[k])


class Generator(nn.Module):
  decoder: nn.Module
  code_dim: Optional[int] = None
  unit_range: bool = True
  components: int = 1   # > 1: a Gaussian-mixture code prior (MixtureMap)
  dtype: Any = jnp.float32  # the affine map's computation; the decoder has its own

  @nn.compact
  def __call__(self, z: jax.Array, noise: Optional[jax.Array] = None,
               train: bool = False) -> jax.Array:
    if self.code_dim and self.components > 1:
      h = MixtureMap(self.code_dim, self.components, name="mapping")(z)
    else:
      h = nn.Dense(self.code_dim, dtype=self.dtype, name="mapping")(z) if self.code_dim else z
    out = self.decoder(h, noise, train=train).astype(jnp.float32)
    return nn.sigmoid(out) if self.unit_range else out
