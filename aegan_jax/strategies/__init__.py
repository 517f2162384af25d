"""Training strategies, looked up by name with --strategy.

A strategy is a module with `build(config, spec) -> Strategy` (spec: a data.Spec, the example
shape and value range; see base.py), `TECHNIQUES`, the technique flags it honours, and
optionally `HYPERPARAMETERS`, its own flags with defaults, help and bounds
(aegan_jax/hyperparameters.py); it is registered here with one line. `build` refuses the flags
a strategy cannot use, in one line.
"""

from types import ModuleType

from aegan_jax.errors import UserError
from aegan_jax.registry import Registry
from aegan_jax.strategies import (aae, ae_pretrain, began, bigan, ebgan, gan, mdgan, ragan, vaegan,
                                  veegan)
from aegan_jax.strategies.base import Phase, Strategy, check_options

STRATEGIES: Registry[ModuleType] = Registry("strategy", "strategy")
STRATEGIES.register("ae_pretrain")(ae_pretrain)   # the seed's: pretrained AE -> generator
STRATEGIES.register("gan")(gan)                   # the baseline, no autoencoder
STRATEGIES.register("mdgan")(mdgan)               # Che et al. 2017
STRATEGIES.register("vaegan")(vaegan)             # Larsen et al. 2016
STRATEGIES.register("aae")(aae)                   # Makhzani et al. 2015
STRATEGIES.register("ebgan")(ebgan)               # Zhao et al. 2016
STRATEGIES.register("began")(began)               # Berthelot et al. 2017
STRATEGIES.register("bigan")(bigan)               # Dumoulin et al. / Donahue et al. 2016
STRATEGIES.register("veegan")(veegan)             # Srivastava et al. 2017
STRATEGIES.register("ragan")(ragan)               # Jolicoeur-Martineau 2018


def supporters() -> dict[str, set[str]]:
  """technique flag -> the strategies that honour it."""
  out: dict[str, set[str]] = {}
  for name in STRATEGIES:
    for technique in STRATEGIES.get(name).TECHNIQUES:
      out.setdefault(technique, set()).add(name)
  return out


def check(config) -> None:
  """Refuses, before anything is loaded or written, options the strategy cannot use."""
  module = STRATEGIES.get(config.strategy)
  # The strategy's own rule first: e.g. began refuses --loss=wgan outright, rather than asking
  # for a gradient penalty it would then refuse too.
  getattr(module, "check", lambda c: None)(config)
  check_options(config, config.strategy, module.TECHNIQUES, supporters())


def build(config, spec, checked: bool = False) -> Strategy:
  """The strategy for `config`; `checked`: the trainer ran `check` once, before loading
  anything, so the members' builds (and a population's rebuild inside the traced step) skip it."""
  if not checked:
    check(config)
  strategy = STRATEGIES.get(config.strategy).build(config, spec)
  if strategy.total_steps == 0:
    raise UserError(f"--steps=0 leaves --strategy={config.strategy} nothing to train (it has no "
                    f"pretraining phase); use --steps > 0")
  return strategy


__all__ = ["STRATEGIES", "Phase", "Strategy", "build"]
