"""The single pytree that a run is: every network's params, batch stats and optimizer states.

TrainState holds arrays only (optimizers live with the strategy that owns them), so it can be
checkpointed as is, restored into `jax.eval_shape(strategy.init)`, donated to jit, and later
vmapped for populations. Networks are keyed by role: 'encoder', 'decoder', 'generator',
'discriminator'; optimizer states by optimizer name ('ae', 'g', 'd').
"""

from typing import Any

import flax.struct
import jax
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # int32 scalar: steps done
  rng: jax.Array           # uint32 key data of the run's root key (jax.random.key_data)
  params: dict[str, Any]
  batch_stats: dict[str, Any]
  opt_state: dict[str, Any]
  extras: dict[str, Any]   # strategy-specific arrays

  def step_key(self) -> jax.Array:
    """This step's key: a function of (seed, step) only, so runs and resumes reproduce."""
    return jax.random.fold_in(jax.random.wrap_key_data(self.rng), self.step)

  def advanced(self, *, params=None, batch_stats=None, opt_state=None,
               extras=None) -> "TrainState":
    """Every step's ending: one step on, with the networks' (and optimizers') new entries
    merged over the old ones by role; what a step does not name stays as it was."""
    return self.replace(step=self.step + 1,
                        params={**self.params, **(params or {})},
                        batch_stats={**self.batch_stats, **(batch_stats or {})},
                        opt_state={**self.opt_state, **(opt_state or {})},
                        extras={**self.extras, **(extras or {})})


def adam(lr: float | optax.Schedule, config) -> optax.GradientTransformation:
  return optax.adam(lr, b1=config.adam_b1, b2=config.adam_b2)


def generator_optimizer(config) -> optax.GradientTransformation:
  """The generator's optimizer (--g_optimizer): Adam, or SGD whose step shrinks with D's
  gradient where Adam's does not (a G that already matches the data gets a D gradient that
  is noise; Adam still moves it --g_lr per step)."""
  if config.g_optimizer == "sgd":
    return optax.sgd(config.g_lr)
  return adam(config.g_lr, config)


def apply_gradients(tx: optax.GradientTransformation, params, opt_state, grads):
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state
