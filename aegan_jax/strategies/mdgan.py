"""mdgan: the regularized GAN of Che et al. 2017 ("Mode regularized generative adversarial
networks"), with its geometric and mode regularizers. Not the paper's other algorithm, the
two-step MDGAN (a manifold step, then a diffusion step with a second discriminator): the
strategy keeps the name `mdgan` that third-party code gives it, and tables call it
"regularized GAN (Che et al.)".

An encoder E maps data to the noise space; the generator G doubles as its decoder. With
d(x, y) the per-pixel squared error and the game's generator loss g_loss (for the default
non_saturating game, g_loss(D(v)) = -E log D(v)):

  D:  min d_loss(D(x), D(G(z)))                                   [+ --gp_weight, --r1_weight]
  G:  min g_loss(D(G(z))) + l1 E d(x, G(E(x))) + l2 g_loss(D(G(E(x))))
  E:  min                   l1 E d(x, G(E(x))) + l2 g_loss(D(G(E(x))))

l1 = --mdgan_lambda1 (0.2), l2 = --mdgan_lambda2 (0.4), the third-party defaults. The
reconstruction term ties every data point to a region of z, so G cannot drop the modes that
E sends somewhere; the second term makes the reconstructions themselves look real. G and E
share one objective (E's terms are the ones that depend on it), so one gradient of
`generator_objective` with respect to both trains both; they share one Adam (--g_lr).
With --pack=m D judges packs of m samples (PacGAN): data, fakes and reconstructions alike.
"""

import jax
import jax.numpy as jnp

from aegan_jax.adversarial import Adversary, update_discriminator
from aegan_jax.hyperparameters import Hyperparameter
from aegan_jax.models import apply_model
from aegan_jax.state import adam, apply_gradients, generator_optimizer
from aegan_jax.steps import pack_examples, update_every
from aegan_jax.strategies.base import (D_TECHNIQUES, Phase, Strategy, adversarial_init,
                                       encoder_networks, generator_reconstruct, packed_input)

TECHNIQUES = D_TECHNIQUES | {"pack"}
HYPERPARAMETERS = {  # its own flags (aegan_jax/hyperparameters.py), the paper's defaults
    "mdgan_lambda1": Hyperparameter(0.2, "Regularized GAN (mdgan): weight of the geometric "
                                    "regularizer d(x, G(E(x))).", minimum=0),
    "mdgan_lambda2": Hyperparameter(0.4, "Regularized GAN (mdgan): weight of the mode "
                                    "regularizer -log D(G(E(x))).", minimum=0),
}


def generator_objective(adv: Adversary, fake_logits, recon, x, recon_logits, lambda1, lambda2):
  """The G/E loss above from D's logits on G(z) and G(E(x)), and the reconstructions."""
  distance = jnp.mean(jnp.square(recon - x))
  return (adv.g_loss(fake_logits) + lambda1 * distance + lambda2 * adv.g_loss(recon_logits),
          distance)


def build(config, spec) -> Strategy:
  nets = encoder_networks(config, spec, config.latent_dim)
  g_tx, d_tx = generator_optimizer(config), adam(config.d_lr, config)
  adv = Adversary.from_config(config)
  pack = lambda v: pack_examples(v, config.pack)

  def step(state, batch):
    x = batch["image"]
    key_z, key_d = jax.random.split(state.step_key())
    z, _ = nets.latents(key_z, x.shape[0])
    bs = state.batch_stats
    fake, _ = apply_model(nets.generator, state.params["generator"], bs["generator"], z,
                          train=True)
    d_params, d_opt, d_bs, metrics = update_discriminator(adv, nets.discriminator, d_tx, state,
                                                          pack(x), pack(fake), key_d)

    def objective(p):
      fake, g_bs = apply_model(nets.generator, p["generator"], bs["generator"], z, train=True)
      code, e_bs = apply_model(nets.encoder, p["encoder"], bs["encoder"], x, train=True)
      recon, _ = apply_model(nets.generator, p["generator"], bs["generator"], code, train=True)
      d = lambda v: apply_model(nets.discriminator, d_params, d_bs, pack(v), train=True)[0]
      loss, distance = generator_objective(adv, d(fake), recon, x, d(recon),
                                           config.mdgan_lambda1, config.mdgan_lambda2)
      return loss, (g_bs, e_bs, distance)

    ge = {"generator": state.params["generator"], "encoder": state.params["encoder"]}
    (g_loss, (g_bs, e_bs, distance)), grads = jax.value_and_grad(objective, has_aux=True)(ge)
    ge, g_opt = update_every(
        config.n_critic, state.step,
        lambda _: apply_gradients(g_tx, ge, state.opt_state["g"], grads),
        (ge, state.opt_state["g"]))
    state = state.advanced(
        params={**ge, "discriminator": d_params},
        batch_stats={"generator": g_bs, "encoder": e_bs, "discriminator": d_bs},
        opt_state={"g": g_opt, "d": d_opt})
    return state, {**metrics, "g_loss": g_loss, "recon_mse": distance}

  return Strategy(nets=nets, init=adversarial_init(nets, config, spec, g_tx, d_tx,
                                                   packed_input(config.pack)),
                  phases=(Phase("gan", config.steps, step),),
                  reconstruct=generator_reconstruct(nets), ema_decay=config.ema_decay)
