"""The generator: noise -> (optionally) the code space -> a decoder -> images in [0, 1].

With `code_dim` set, an affine map (`mapping`) takes z to a code h, and the decoder is the
autoencoder's, so x' = Dec(mapping(z)[, z_dec]); ae_pretrain initializes both from the
pretrained autoencoder. Without it, z feeds the decoder directly (the plain GAN baseline).
The sigmoid lives here, not in the decoder, so reconstruction losses can use logits; for
real-valued data (unit_range=False, e.g. 2-D points) the output is linear.
"""

from typing import Optional

import flax.linen as nn
import jax


class Generator(nn.Module):
  decoder: nn.Module
  code_dim: Optional[int] = None
  unit_range: bool = True

  @nn.compact
  def __call__(self, z: jax.Array, noise: Optional[jax.Array] = None,
               train: bool = False) -> jax.Array:
    h = nn.Dense(self.code_dim, name="mapping")(z) if self.code_dim else z
    out = self.decoder(h, noise, train=train)
    return nn.sigmoid(out) if self.unit_range else out
