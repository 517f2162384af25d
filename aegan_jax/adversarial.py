"""The discriminator side of every strategy, and the generator-side techniques, as pure functions.

`Adversary` is the chosen game (--loss) plus what regularizes D: one-sided label smoothing, the
WGAN-GP penalty on interpolates, the R1 penalty on real data. `update_discriminator` is the one
D update that every strategy with a classifier-style D (x, a code, or an (x, z) pair) shares.
The EMA and historical-averaging helpers keep their running averages in `TrainState.extras`.
"""

import dataclasses
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from aegan_jax.losses import ADVERSARIAL, AdversarialLoss, smoothed_d_loss
from aegan_jax.models import apply_model
from aegan_jax.state import TrainState, apply_gradients


@dataclasses.dataclass(frozen=True)
class Adversary:
  loss: AdversarialLoss
  gp_weight: float = 0.0
  r1_weight: float = 0.0
  label_smoothing: float = 0.0

  @classmethod
  def from_config(cls, config) -> "Adversary":
    return cls(ADVERSARIAL.get(config.loss), config.gp_weight, config.r1_weight,
               config.label_smoothing)

  def d_loss(self, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    if self.label_smoothing:
      return smoothed_d_loss(real_logits, fake_logits, self.label_smoothing)
    return self.loss.d_loss(real_logits, fake_logits)

  def g_loss(self, fake_logits: jax.Array) -> jax.Array:
    return self.loss.g_loss(fake_logits)

  def score(self, logits: jax.Array) -> jax.Array:
    """D's mean output for logging: a probability for logistic games, else the raw score."""
    return jnp.mean(jax.nn.sigmoid(logits) if self.loss.logistic else logits)

  def penalty(self, critic: Callable[[Any], jax.Array], real, fake,
              key: jax.Array) -> tuple[jax.Array, dict]:
    """Weighted gradient penalties on D's input; `real`/`fake` are pytrees of [B, ...] arrays
    (an image batch, or an (x, z) pair)."""
    total, metrics = jnp.zeros(()), {}
    if self.gp_weight:
      n = jax.tree.leaves(real)[0].shape[0]
      eps = jax.random.uniform(key, (n,))
      mix = jax.tree.map(lambda r, f: _bcast(eps, r) * r + (1 - _bcast(eps, r)) * f, real, fake)
      gp = jnp.mean(jnp.square(input_grad_norms(critic, mix) - 1.0))
      total, metrics["gradient_penalty"] = total + self.gp_weight * gp, gp
    if self.r1_weight:
      r1 = jnp.mean(jnp.square(input_grad_norms(critic, real)))
      total, metrics["r1_penalty"] = total + 0.5 * self.r1_weight * r1, r1
    return total, metrics


def _bcast(per_example: jax.Array, like: jax.Array) -> jax.Array:
  return per_example.reshape(per_example.shape + (1,) * (like.ndim - 1))


def input_grad_norms(critic: Callable[[Any], jax.Array], inputs) -> jax.Array:
  """||d critic(x_i) / d x_i|| per example, over every leaf of the input pytree.

  One gradient of the summed output gives every per-example gradient, because D treats the
  examples of a batch independently (minibatch discrimination bends this; it is a feature of D
  in the penalty as in training).
  """
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(inputs)
  sq = sum(jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1) for g in jax.tree.leaves(grads))
  return jnp.sqrt(sq + 1e-12)  # the epsilon keeps the gradient of sqrt finite at 0


def update_discriminator(adv: Adversary, module: nn.Module, tx: optax.GradientTransformation,
                         state: TrainState, real, fake, key: jax.Array, *,
                         name: str = "discriminator", opt: str = "d",
                         extra_loss: Optional[Callable[[Any], jax.Array]] = None):
  """One D step on a real and a fake batch (each any pytree D accepts). Real and fake go
  through D separately, so no layer can compare them inside one batch.

  Returns (params, opt_state, batch_stats, metrics); `extra_loss(params)` adds e.g. the
  historical-averaging term.
  """
  bs = state.batch_stats[name]

  def objective(dp):
    real_logits, new_bs = apply_model(module, dp, bs, real, train=True)
    fake_logits, _ = apply_model(module, dp, bs, fake, train=True)
    critic = lambda x: apply_model(module, dp, bs, x, train=True)[0]
    pen, pen_metrics = adv.penalty(critic, real, fake, key)
    loss = adv.d_loss(real_logits, fake_logits)
    total = loss + pen + (extra_loss(dp) if extra_loss else 0.0)
    return total, (new_bs, real_logits, fake_logits, loss, pen_metrics)

  (_, (new_bs, real_logits, fake_logits, loss, pen_metrics)), grads = jax.value_and_grad(
      objective, has_aux=True)(state.params[name])
  params, opt_state = apply_gradients(tx, state.params[name], state.opt_state[opt], grads)
  metrics = {"d_loss": loss, "d_real": adv.score(real_logits), "d_fake": adv.score(fake_logits),
             "d_grad_norm": optax.tree.norm(grads), **pen_metrics}
  return params, opt_state, new_bs, metrics


def ema_update(ema, params, decay: float):
  """ema <- decay * ema + (1 - decay) * params, leaf by leaf."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


def squared_distance(a, b) -> jax.Array:
  """||a - b||^2 summed over every leaf of two pytrees of the same structure."""
  return sum(jnp.sum(jnp.square(x - y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def running_mean(mean, params, count: jax.Array):
  """The mean of `count` parameter vectors, given the mean of the first count - 1."""
  return jax.tree.map(lambda m, p: m + (p - m) / count, mean, params)
