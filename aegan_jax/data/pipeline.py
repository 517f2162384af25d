"""Batches gathered on the device from a device-resident dataset.

MNIST-size datasets fit in accelerator memory whole, so they are copied there once (as uint8)
and every batch is a gather by a permutation that is a pure function of (data key, epoch): no
host-to-device copy per step, and batch t of a run is the same after a resume.
"""

import jax
import jax.numpy as jnp


def to_float(images: jax.Array) -> jax.Array:
  """uint8 pixels -> float32 in [0, 1], the range the decoder's sigmoid outputs."""
  return images.astype(jnp.float32) / 255.0


def batch_indices(key: jax.Array, step: jax.Array, n: int, batch_size: int) -> jax.Array:
  """Indices of batch `step`: epochs are fresh permutations; the last partial batch is dropped."""
  per_epoch = n // batch_size
  epoch, i = step // per_epoch, step % per_epoch
  perm = jax.random.permutation(jax.random.fold_in(key, epoch), n)
  return jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)


def batch_at(data: dict[str, jax.Array], key: jax.Array, step: jax.Array,
             batch_size: int) -> dict[str, jax.Array]:
  """Batch `step` of the run as {'image': float32 [B, H, W, C], 'label': int32 [B]}."""
  idx = batch_indices(key, step, data["image"].shape[0], batch_size)
  return {"image": to_float(data["image"][idx]), "label": data["label"][idx]}
