"""ragan: the relativistic average GAN (Jolicoeur-Martineau 2018), written out in full.

D's logit C no longer says "real" but "more real than the average of the other kind":
  D: min -E log s(C(x) - E C(G(z))) - E log s(E C(x) - C(G(z)))
  G: the same with data and samples swapped (so G gets gradient from the real term too).
One D update, then one G update against the updated D. The README's "Fork it" example.
"""

import jax
import jax.numpy as jnp

from aegan_jax.errors import UserError
from aegan_jax.models import apply_model
from aegan_jax.state import adam, apply_gradients, generator_optimizer
from aegan_jax.strategies.base import Phase, Strategy, adversarial_init, build_networks

TECHNIQUES = frozenset({"ema_decay"})  # the flags it honours; the others are refused


def check(config) -> None:
  if config.loss != "non_saturating":
    raise UserError(f"--strategy=ragan plays its own relativistic game, not --loss={config.loss}; "
                    f"leave --loss at its default")


def relativistic_loss(more_real, less_real):
  """-E log s(a - E b) - E log s(E a - b): low when logits `a` exceed the mean of `b` and the
  other way round."""
  return -(jnp.mean(jax.nn.log_sigmoid(more_real - jnp.mean(less_real)))
           + jnp.mean(jax.nn.log_sigmoid(jnp.mean(more_real) - less_real)))


def build(config, spec) -> Strategy:
  nets = build_networks(config, spec, autoencoder=False)
  g_tx, d_tx = generator_optimizer(config), adam(config.d_lr, config)

  def step(state, batch):
    x, bs, params = batch["image"], state.batch_stats, state.params
    z, _ = nets.latents(state.step_key(), x.shape[0])
    critic = lambda d, stats, v: apply_model(nets.discriminator, d, stats, v, train=True)
    generate = lambda g: apply_model(nets.generator, g, bs["generator"], z, train=True)

    def d_objective(d):
      (real, d_bs), (fake, _) = critic(d, bs["discriminator"], x), critic(
          d, bs["discriminator"], generate(params["generator"])[0])
      return relativistic_loss(real, fake), d_bs

    (d_loss, d_bs), grads = jax.value_and_grad(d_objective, has_aux=True)(params["discriminator"])
    d_params, d_opt = apply_gradients(d_tx, params["discriminator"], state.opt_state["d"], grads)

    def g_objective(g):
      fake, g_bs = generate(g)
      return relativistic_loss(critic(d_params, d_bs, fake)[0], critic(d_params, d_bs, x)[0]), g_bs

    (g_loss, g_bs), grads = jax.value_and_grad(g_objective, has_aux=True)(params["generator"])
    g_params, g_opt = apply_gradients(g_tx, params["generator"], state.opt_state["g"], grads)
    return state.advanced(params={"generator": g_params, "discriminator": d_params},
                          batch_stats={"generator": g_bs, "discriminator": d_bs},
                          opt_state={"g": g_opt, "d": d_opt}), {"d_loss": d_loss, "g_loss": g_loss}

  return Strategy(nets=nets, init=adversarial_init(nets, config, spec, g_tx, d_tx),
                  phases=(Phase("gan", config.steps, step),), ema_decay=config.ema_decay)
