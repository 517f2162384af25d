"""Batches gathered on the device from a device-resident dataset.

MNIST-size datasets fit in accelerator memory whole, so they are copied there once (as uint8)
and every batch is a gather by a permutation that is a pure function of (data key, epoch): no
host-to-device copy per step, and batch t of a run is the same after a resume.
"""

import jax
import jax.numpy as jnp


def to_float(images: jax.Array) -> jax.Array:
  """uint8 pixels -> float32 in [0, 1], the range the decoder's sigmoid outputs.

  Real-valued data (2-D points) is already float32 and passes through.
  """
  if images.dtype != jnp.uint8:
    return images.astype(jnp.float32)
  return images.astype(jnp.float32) / 255.0


def steps_per_epoch(n: int, batch_size: int) -> int:
  return n // batch_size  # the last partial batch is dropped


def epoch_permutation(key: jax.Array, epoch, n: int) -> jax.Array:
  """The order of epoch `epoch`: a fresh permutation, a function of (data key, epoch)."""
  return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def batch_from_permutation(data: dict[str, jax.Array], perm: jax.Array, step: jax.Array,
                           batch_size: int) -> dict[str, jax.Array]:
  """Batch `step` given its epoch's permutation: {'image': float32 [B, ...], 'label': [B]}.

  The trainer computes `perm` once per epoch (a sort of N keys), not once per step.
  """
  idx = _slice(perm, step, batch_size)
  return {"image": to_float(data["image"][idx]), "label": data["label"][idx]}


def _slice(perm: jax.Array, step: jax.Array, batch_size: int) -> jax.Array:
  i = step % steps_per_epoch(perm.shape[0], batch_size)
  return jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)


def batch_at(data: dict[str, jax.Array], key: jax.Array, step: jax.Array,
             batch_size: int) -> dict[str, jax.Array]:
  """Batch `step` of the run, permutation included (for tests and one-off use)."""
  n = data["image"].shape[0]
  perm = epoch_permutation(key, step // steps_per_epoch(n, batch_size), n)
  return batch_from_permutation(data, perm, step, batch_size)
