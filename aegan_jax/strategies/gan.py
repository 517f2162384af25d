"""gan: the plain GAN baseline, the same networks and budget without the autoencoder.

G(z) = sigmoid(Dec(z)) with z ~ N(0, I) of size latent_dim; D as in every strategy.
One phase of `--steps` gan_steps (D update, then G update) with `--loss`:
  D: min d_loss(D(x), D(G(z))) [+ penalties],   G: min g_loss(D(G(z)))
(for the default non_saturating game: d_loss = -E log D(x) - E log(1 - D(G(z))),
g_loss = -E log D(G(z))). Every regularizer and improved technique applies except encoder
feature matching, which needs an encoder. With --pack=m, D judges packs of m samples
(PacGAN); with --update=simultaneous both players move from the same point each step.
"""

import functools

from aegan_jax.adversarial import Adversary
from aegan_jax.state import adam, generator_optimizer
from aegan_jax.steps import GeneratorTechniques, gan_step
from aegan_jax.strategies.base import (GAN_TECHNIQUES, Phase, Strategy, adversarial_init,
                                       build_networks, packed_input)

TECHNIQUES = GAN_TECHNIQUES - {"encoder_feature_weight"}


def build(config, spec) -> Strategy:
  nets = build_networks(config, spec, autoencoder=False)
  g_tx, d_tx = generator_optimizer(config), adam(config.d_lr, config)

  step = functools.partial(gan_step, nets, g_tx, d_tx, Adversary.from_config(config),
                           GeneratorTechniques.from_config(config))
  init = adversarial_init(nets, config, spec, g_tx, d_tx, packed_input(config.pack))
  return Strategy(nets=nets, init=init,
                  phases=(Phase("gan", config.steps, step),),
                  ema_decay=config.ema_decay)
