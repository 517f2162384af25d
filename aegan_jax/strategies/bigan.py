"""bigan: adversarially learned inference (ALI, Dumoulin et al. 2016; BiGAN, Donahue et al. 2016).

A generator G: z -> x and an encoder E: x -> z, with z ~ N(0, I) of size latent_dim. The
discriminator sees (x, z) pairs, never x alone: data pairs (x, E(x)) against generated pairs
(G(z), z). With the game's d_loss (--loss):

  D:     min d_loss(D(x, E(x)), D(G(z), z))                [+ --gp_weight, --r1_weight]
  G, E:  min d_loss(D(G(z), z), D(x, E(x)))                (the same loss, labels swapped)

At the optimum the two joint distributions q(x) q(z|x) and p(z) p(x|z) agree, so E inverts G
without any reconstruction term. For the logistic games the swapped loss is
-E log D(G(z), z) - E log(1 - D(x, E(x))): the non-saturating loss of both players, which is
what ALI and BiGAN train (so --loss=minimax and --loss=non_saturating give the same step here).
For lsgan, hinge and wgan, swapping the labels is the natural generalization: G and E chase
the target of the other side (hinge: E relu(1 - D(G(z), z)) + E relu(1 + D(x, E(x)));
wgan: E D(x, E(x)) - E D(G(z), z)). One-sided label smoothing is D's regularizer only: the
G/E loss uses the unsmoothed game, as the generator loss of every other strategy does.

G and E share one objective (one gradient of `encoder_generator_loss` with respect to both)
and one Adam (--g_lr). The encoder is stochastic, E(x, eps) with eps ~ N(0, I) of latent_dim
numbers joined to x (ALI's conditional on the mixtures): a deterministic E puts the data pairs
on a set of x's dimension inside the (x, z) space while the generated pairs fill the space
whenever latent_dim exceeds it, and D then separates the two supports outright. The joint D
reads [x, z] (flattened x for --arch=mlp, as the ALI code does; the conv body's features for
dcgan) through an MLP head of --d_hidden (default --mlp_hidden).

--update=simultaneous (the ALI and PacGAN code) moves G, E and D from the same point each
step: the G/E gradient is taken against D before its update. The default alternates.
"""

import jax

from aegan_jax.adversarial import Adversary, update_discriminator
from aegan_jax.models import apply_model
from aegan_jax.steps import pullback_update
from aegan_jax.strategies.base import (Strategy, joint_game, joint_step_end, joint_strategy,
                                       played_discriminator)

# No spectral_norm: neither the arch encoders nor JointDiscriminator's head normalize their
# layers. No feature matching, minibatch discrimination or historical averaging: those belong
# to gan_step's image D.
TECHNIQUES = frozenset({"gp_weight", "r1_weight", "n_critic", "label_smoothing", "ema_decay",
                        "update"})


def encoder_generator_loss(adv: Adversary, real_pair_logits, fake_pair_logits):
  """The G/E loss above: D's loss with data and generated pairs swapped (unsmoothed)."""
  return adv.loss.d_loss(fake_pair_logits, real_pair_logits)


def build(config, spec) -> Strategy:
  nets, g_tx, d_tx, adv = joint_game(config, spec, stochastic_encoder=True)

  def step(state, batch):
    x = batch["image"]
    key_z, key_d, key_e = jax.random.split(state.step_key(), 3)
    z, _ = nets.latents(key_z, x.shape[0])
    eps = nets.encoder_noise(key_e, x.shape[0])
    bs = state.batch_stats

    # G and E run forward once: the D update uses their outputs, and the G/E gradient is the
    # updated D's gradient at those same outputs pulled back through them (as in gan_step).
    def forward(p):
      fake, g_bs = apply_model(nets.generator, p["generator"], bs["generator"], z, train=True)
      code, e_bs = apply_model(nets.encoder, p["encoder"], bs["encoder"], x, eps, train=True)
      return (fake, code), (g_bs, e_bs)

    ge = {"generator": state.params["generator"], "encoder": state.params["encoder"]}
    (fake, code), pullback, (g_bs, e_bs) = jax.vjp(forward, ge, has_aux=True)
    d_params, d_opt, d_bs, metrics = update_discriminator(adv, nets.discriminator, d_tx, state,
                                                          (x, code), (fake, z), key_d)
    played = played_discriminator(config, state, d_params, d_bs)

    def objective(outputs):
      fake, code = outputs
      d = lambda pair: apply_model(nets.discriminator, *played, pair, train=True)[0]
      return encoder_generator_loss(adv, d((x, code)), d((fake, z)))

    g_loss, output_grads = jax.value_and_grad(objective)((fake, code))

    ge, g_opt, g_norm = pullback_update(g_tx, ge, state.opt_state["g"], pullback,
                                         output_grads, config.n_critic, state.step)
    state = joint_step_end(state, ge, g_opt, g_bs, e_bs, d_params, d_opt, d_bs)
    return state, {**metrics, "g_loss": g_loss, "g_grad_norm": g_norm}

  return joint_strategy(nets, config, spec, g_tx, d_tx, step)
