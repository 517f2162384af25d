"""Network families, looked up by name with --arch.

An arch is a small record of constructors for the four roles; the Generator that wraps a
decoder is shared by every arch (models/generator.py). To add a family: one module that
registers an `Arch`, plus its import below.
"""

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from aegan_jax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Arch:
  """Constructors: (config, example_shape) -> nn.Module for each role."""
  encoder: Callable[[Any, tuple[int, int, int]], nn.Module]
  decoder: Callable[[Any, tuple[int, int, int]], nn.Module]
  discriminator: Callable[[Any, tuple[int, int, int]], nn.Module]
  check_shape: Callable[[tuple[int, int, int]], None] = lambda shape: None


ARCHS: Registry[Arch] = Registry("arch", "arch")


def init_model(module: nn.Module, key: jax.Array, *args, **kwargs):
  """Returns (params, batch_stats); batch_stats is {} for modules without BatchNorm."""
  variables = module.init(key, *args, train=False, **kwargs)
  return variables["params"], variables.get("batch_stats", {})


def apply_model(module: nn.Module, params, batch_stats, *args, train: bool, **kwargs):
  """Applies a module; returns (output, new_batch_stats).

  In train mode BatchNorm normalizes with the batch's statistics and updates the running
  averages, which come back as the second value; in eval mode they are used and returned as is.
  """
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
    if train:
      out, updates = module.apply(variables, *args, train=True, mutable=["batch_stats"], **kwargs)
      return out, updates["batch_stats"]
  return module.apply(variables, *args, train=train, **kwargs), batch_stats


def join_noise(h: jax.Array, noise) -> jax.Array:
  """The seed's two-input decoder x' = Dec(h, z): the noise z joins the code h at the input."""
  return h if noise is None else jnp.concatenate([h, noise], axis=-1)


# Registering imports (one line per arch).
from aegan_jax.models import dcgan as _dcgan  # noqa: E402,F401
from aegan_jax.models import mlp as _mlp  # noqa: E402,F401
