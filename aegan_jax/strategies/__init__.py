"""Training strategies, looked up by name with --strategy.

A strategy module exposes `build(config, spec) -> Strategy` (spec: a data.Spec, the
example shape and value range; see base.py) and is
registered here with one line.
"""

from typing import Callable

from aegan_jax.registry import Registry
from aegan_jax.strategies import ae_pretrain, gan
from aegan_jax.strategies.base import Phase, Strategy

STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy", "strategy")
STRATEGIES.register("ae_pretrain")(ae_pretrain.build)
STRATEGIES.register("gan")(gan.build)


def build(config, spec) -> Strategy:
  return STRATEGIES.get(config.strategy)(config, spec)


__all__ = ["STRATEGIES", "Phase", "Strategy", "build"]
