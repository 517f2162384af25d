"""Objectives as pure functions of logits, each numerically stable.

Reconstruction (per-pixel mean, pixels in [0, 1]):
  mse:  mean (sigmoid(logits) - x)^2
  bce:  mean -[x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))]   (Bernoulli likelihood)

Adversarial, with D(x) = sigmoid(l(x)) and the seed's value function
  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))],   min_G max_D V:
  minimax:         d_loss = -V,  g_loss = E_z[log(1 - D(G(z)))]     (exactly the seed's game)
  non_saturating:  d_loss = -V,  g_loss = -E_z[log D(G(z))]         (Goodfellow et al.'s fix
                   for the vanishing generator gradient when D rejects fakes early on)
log D = log_sigmoid(l) and log(1 - D) = log_sigmoid(-l): never log(sigmoid(l)).

Other games on the raw score l (no sigmoid):
  lsgan  (Mao et al. 2017, a=0, b=c=1): d_loss = (E(l_r - 1)^2 + E l_f^2) / 2,
                                         g_loss = E(l_f - 1)^2 / 2
  hinge  (Lim & Ye 2017; Miyato et al.): d_loss = E relu(1 - l_r) + E relu(1 + l_f),
                                         g_loss = -E l_f
  wgan   (Arjovsky et al. 2017):         d_loss = E l_f - E l_r,  g_loss = -E l_f;
         the critic must be kept Lipschitz: --gp_weight (WGAN-GP) or --spectral_norm.
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from aegan_jax.registry import Registry


def mse(logits: jax.Array, x: jax.Array) -> jax.Array:
  return jnp.mean(jnp.square(jax.nn.sigmoid(logits) - x))


def bce(logits: jax.Array, x: jax.Array) -> jax.Array:
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, x))


def mse_linear(outputs: jax.Array, x: jax.Array) -> jax.Array:
  """MSE for real-valued data, whose decoder output is not squashed."""
  return jnp.mean(jnp.square(outputs - x))


RECONSTRUCTION: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {"mse": mse, "bce": bce}


def value_function(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """The seed's V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))], from logits."""
  return jnp.mean(jax.nn.log_sigmoid(real_logits)) + jnp.mean(jax.nn.log_sigmoid(-fake_logits))


@dataclasses.dataclass(frozen=True)
class AdversarialLoss:
  """d_loss(real_logits, fake_logits) and g_loss(fake_logits), both minimized."""
  d_loss: Callable[[jax.Array, jax.Array], jax.Array]
  g_loss: Callable[[jax.Array], jax.Array]
  logistic: bool = False         # D(x) = sigmoid(l): one-sided label smoothing applies
  needs_lipschitz: bool = False  # unbounded critic: needs a gradient penalty or spectral norm


ADVERSARIAL: Registry[AdversarialLoss] = Registry("loss", "loss")

ADVERSARIAL.register("minimax")(AdversarialLoss(
    d_loss=lambda real, fake: -value_function(real, fake),
    g_loss=lambda fake: jnp.mean(jax.nn.log_sigmoid(-fake)),
    logistic=True,
))

ADVERSARIAL.register("non_saturating")(AdversarialLoss(
    d_loss=lambda real, fake: -value_function(real, fake),
    g_loss=lambda fake: -jnp.mean(jax.nn.log_sigmoid(fake)),
    logistic=True,
))

ADVERSARIAL.register("lsgan")(AdversarialLoss(
    d_loss=lambda real, fake: 0.5 * (jnp.mean(jnp.square(real - 1)) + jnp.mean(jnp.square(fake))),
    g_loss=lambda fake: 0.5 * jnp.mean(jnp.square(fake - 1)),
))

ADVERSARIAL.register("hinge")(AdversarialLoss(
    d_loss=lambda real, fake: jnp.mean(jax.nn.relu(1 - real)) + jnp.mean(jax.nn.relu(1 + fake)),
    g_loss=lambda fake: -jnp.mean(fake),
))

ADVERSARIAL.register("wgan")(AdversarialLoss(
    d_loss=lambda real, fake: jnp.mean(fake) - jnp.mean(real),
    g_loss=lambda fake: -jnp.mean(fake),
    needs_lipschitz=True,
))


def smoothed_d_loss(real_logits: jax.Array, fake_logits: jax.Array,
                    smoothing: float) -> jax.Array:
  """Logistic D loss with one-sided label smoothing (Salimans et al. 2016): real targets
  1 - smoothing, fake targets stay 0 (smoothing fakes too would reward D for keeping them)."""
  real_target = jnp.full_like(real_logits, 1.0 - smoothing)
  return (jnp.mean(optax.sigmoid_binary_cross_entropy(real_logits, real_target))
          + jnp.mean(optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits))))
