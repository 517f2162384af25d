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


ADVERSARIAL: Registry[AdversarialLoss] = Registry("loss", "loss")

ADVERSARIAL.register("minimax")(AdversarialLoss(
    d_loss=lambda real, fake: -value_function(real, fake),
    g_loss=lambda fake: jnp.mean(jax.nn.log_sigmoid(-fake)),
))

ADVERSARIAL.register("non_saturating")(AdversarialLoss(
    d_loss=lambda real, fake: -value_function(real, fake),
    g_loss=lambda fake: -jnp.mean(jax.nn.log_sigmoid(fake)),
))
