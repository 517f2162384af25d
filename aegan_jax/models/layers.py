"""Layers the discriminators share: optional spectral normalization, minibatch discrimination.

Spectral normalization (Miyato et al. 2018) divides a weight by its largest singular value,
estimated by one power iteration per training call; the iteration's vector lives in the
'batch_stats' collection, so it is checkpointed and updated like BatchNorm statistics.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def maybe_sn(layer: nn.Module, spectral_norm: bool, train: bool):
  """`layer` as a callable, wrapped in spectral normalization when asked."""
  if not spectral_norm:
    return layer
  wrapped = nn.SpectralNorm(layer)
  return lambda x: wrapped(x, update_stats=train)


class MinibatchDiscrimination(nn.Module):
  """Salimans et al. 2016, section 3.2: features that tell D how alike a batch's examples are.

  f(x_i) is projected to `num_kernels` rows M_i of size `kernel_dim`; o(x_i)_b =
  sum_j exp(-||M_i,b - M_j,b||_1). A collapsed generator yields near-identical rows, large
  o, which D learns to reject. The output [B, num_kernels] is appended to the features. The
  layer couples the examples of a batch, so real and fake batches go through D separately.
  """
  num_kernels: int = 100   # B in the paper
  kernel_dim: int = 5      # C in the paper

  @nn.compact
  def __call__(self, f: jax.Array) -> jax.Array:
    m = nn.Dense(self.num_kernels * self.kernel_dim, use_bias=False,
                 kernel_init=nn.initializers.normal(0.05))(f)
    m = m.reshape(f.shape[0], self.num_kernels, self.kernel_dim)
    l1 = jnp.sum(jnp.abs(m[:, None] - m[None, :]), axis=-1)     # [B, B, kernels]
    o = jnp.sum(jnp.exp(-l1), axis=1) - 1.0                      # drop the self-distance term
    return jnp.concatenate([f, o], axis=-1)
