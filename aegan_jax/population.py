"""Population training: K independent runs in one program, vmapped over their states.

`--population=K` trains members with seeds seed, seed+1, ..., seed+K-1 (unless
`--population_vary` lists the seeds), and `--population_vary='g_lr=1e-4,2e-4;...'` gives each
member its own value of float hyperparameters (learning rates, loss weights). Each member is
exactly the single run of its Config: its state starts from that config's init, its seed drives
its keys and data order, and its step is the single run's step under `jax.vmap`, so the K
members share one compiled program (one dispatch per step for all of them).

Why only float fields vary: the step is traced once for all members, with a varying field as a
traced [K] value. Integers and strings decide shapes and program structure (layer widths, which
loss), which cannot differ inside one program; those belong to `scripts.sweep`.
"""

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from aegan_jax import config as config_lib
from aegan_jax.errors import UserError


def parse_vary(spec: str) -> dict[str, list[str]]:
  """'g_lr=1e-4,2e-4;d_lr=1e-4,2e-4' -> {'g_lr': ['1e-4', '2e-4'], 'd_lr': [...]}."""
  axes: dict[str, list[str]] = {}
  for part in filter(None, (p.strip() for p in spec.split(";"))):
    name, sep, values = part.partition("=")
    name = name.strip().lstrip("-")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not name or not items:
      raise UserError(f"--population_vary entry {part!r} is not name=v1,v2,...; write e.g. "
                      f"--population_vary='g_lr=1e-4,2e-4'")
    if name in axes:
      raise UserError(f"--population_vary names {name} twice; give it once with all its values")
    axes[name] = items
  return axes


def member_configs(config: config_lib.Config, size: int,
                   vary: str = "") -> tuple[list[config_lib.Config], tuple[str, ...]]:
  """The members' Configs and the names of the float fields that differ between them."""
  if size < 1:
    raise UserError(f"--population must be >= 1, got {size}")
  axes = parse_vary(vary)
  fields = {f.name: f for f in dataclasses.fields(config_lib.Config)}
  overrides: list[dict[str, Any]] = [{"seed": config.seed + i} for i in range(size)]
  traced = []
  for name, values in axes.items():
    if name not in fields:
      raise UserError(f"--population_vary: unknown field {name!r}; it takes float flags of "
                      f"aegan_jax/config.py (learning rates, loss weights) and seed")
    kind = type(getattr(config, name))
    if name != "seed" and kind is not float:
      raise UserError(f"--population_vary cannot vary {name} (a {kind.__name__}): members share "
                      f"one compiled program, so only seed and float hyperparameters may differ; "
                      f"sweep {name} with scripts.sweep")
    if len(values) != size:
      raise UserError(f"--population_vary gives {len(values)} values of {name} for "
                      f"--population={size}; give one value per member")
    try:
      parsed = [int(v) if name == "seed" else float(v) for v in values]
    except ValueError:
      raise UserError(f"--population_vary: {name} takes numbers, got {','.join(values)}") from None
    for o, v in zip(overrides, parsed):
      o[name] = v
    if name != "seed":
      traced.append(name)
  configs = [config_lib.validate(dataclasses.replace(config, **o)) for o in overrides]
  return configs, tuple(traced)


def hparams(configs: Sequence[config_lib.Config], traced: Sequence[str]) -> dict[str, jax.Array]:
  """The varying fields as [K] float32 arrays, the vmapped argument of the step."""
  return {name: jnp.asarray([getattr(c, name) for c in configs], jnp.float32) for name in traced}


def stack(trees: Sequence[Any]) -> Any:
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree: Any, i: int) -> Any:
  return jax.tree.map(lambda x: x[i], tree)
