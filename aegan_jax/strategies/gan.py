"""gan: the plain GAN baseline, the same networks and budget without the autoencoder.

G(z) = sigmoid(Dec(z)) with z ~ N(0, I) of size latent_dim; D as in every strategy.
One phase of `--steps` gan_steps (D update, then G update), with `--loss`.
"""

import functools

import jax

from aegan_jax.losses import ADVERSARIAL
from aegan_jax.state import adam
from aegan_jax.steps import gan_step
from aegan_jax.strategies.base import Phase, Strategy, build_networks, init_networks, new_state


def build(config, spec) -> Strategy:
  nets = build_networks(config, spec, autoencoder=False)
  g_tx, d_tx = adam(config.g_lr, config), adam(config.d_lr, config)
  loss = ADVERSARIAL.get(config.loss)

  def init(key):
    params, batch_stats = init_networks(nets, jax.random.fold_in(key, 1), spec.shape)
    opt_state = {"g": g_tx.init(params["generator"]), "d": d_tx.init(params["discriminator"])}
    return new_state(key, params, batch_stats, opt_state)

  step = functools.partial(gan_step, nets, g_tx, d_tx, loss)
  return Strategy(nets=nets, init=init, phases=(Phase("gan", config.steps, step),))
