"""vaegan: the VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned
similarity metric").

A VAE whose decoder is the generator G, with its reconstruction error measured in an
intermediate layer Dis_l of the discriminator instead of in pixels: the middle hidden layer
(layer ceil(L / 2) of L; the first of the mlp's two, the first convolution of dcgan's), as
Larsen et al. take the third of their discriminator's four convolutions. The last hidden layer
is the one that only has to separate real from fake; a middle one still describes content. The encoder E gives the
posterior q(z|x) = N(mu(x), diag(exp(logvar(x)))) as 2 * latent_dim numbers. With
eps, z_p ~ N(0, I):

  z = mu + exp(logvar / 2) * eps   (reparameterized),   x~ = G(z),   x_p = G(z_p)
  L_prior = KL(q(z|x) || N(0, I)) = E_x sum_j 0.5 (mu_j^2 + exp(logvar_j) - 1 - logvar_j)
  L_llike = E_x 0.5 sum_f (Dis_l(x)_f - Dis_l(x~)_f)^2 = -log N(Dis_l(x) | Dis_l(x~), I) + c

  D:    min d_loss(D(x), D([x~; x_p]))                        [+ --gp_weight, --r1_weight]
  E:    min L_prior + L_llike
  G:    min gamma L_llike + g_loss(D(x~)) + g_loss(D(x_p))

L_llike is Larsen's Gaussian observation model on D's features, summed over features like
L_prior is over latent dims: with a mean over features instead (tried first), E's
reconstruction term weighed 1 / (D's width) of the paper's and the posterior collapsed onto
the prior on mnist5k (KL -> 0, held-out reconstruction error 0.17, worse than the mean image's
0.067); with the sum the KL stayed at 5-8. gamma (--vaegan_gamma) weighs "content" against "style" in
G's loss; Larsen et al. leave it open, 1.0 is our default. The paper writes the GAN terms with
log(1 - D); we use the game's g_loss (non-saturating by default), the usual practice. D sees
both kinds of fake as one batch, so its fake term is the mean of the two, not their sum.

Each network gets exactly its own terms: E no gradient from the GAN terms, G none from
L_prior (it does not depend on G anyway), D none from L_llike. One forward pass of E and G
serves the D update and both gradients: its pullback is applied twice, once to the cotangent
of E's objective and once to G's (the gan_step pattern). E and G share one Adam (--g_lr; Adam
is per-parameter, so one optimizer over both is two optimizers). With --n_critic=k, E and G
are updated on every k-th step only. Reconstruction decodes the posterior mean.
"""

import jax
import jax.numpy as jnp
import optax

from aegan_jax.adversarial import Adversary, update_discriminator
from aegan_jax.errors import UserError
from aegan_jax.hyperparameters import Hyperparameter
from aegan_jax.models import apply_model
from aegan_jax.state import adam, apply_gradients, generator_optimizer
from aegan_jax.steps import update_every
from aegan_jax.strategies.base import (D_TECHNIQUES, Phase, Strategy, adversarial_init,
                                       encoder_networks, generator_reconstruct)

TECHNIQUES = D_TECHNIQUES
HYPERPARAMETERS = {  # its own flags (aegan_jax/hyperparameters.py), the paper's defaults
    "vaegan_gamma": Hyperparameter(1.0, "VAE-GAN: weight of the feature-space reconstruction "
                                   "in the decoder's loss (gamma in Larsen et al.).", minimum=0),
}


def posterior(e: jax.Array, latent_dim: int) -> tuple[jax.Array, jax.Array]:
  """(mu, logvar) from the encoder's [B, 2 * latent_dim] output."""
  return e[:, :latent_dim], e[:, latent_dim:]


def reparameterize(mu: jax.Array, logvar: jax.Array, eps: jax.Array) -> jax.Array:
  """z = mu + sigma * eps: a sample of q(z|x) that is differentiable in mu and logvar."""
  return mu + jnp.exp(0.5 * logvar) * eps


def kl_prior(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """L_prior: KL(N(mu, diag exp(logvar)) || N(0, I)), summed over dims, mean over the batch."""
  kl = 0.5 * (jnp.square(mu) + jnp.exp(logvar) - 1.0 - logvar)
  return jnp.mean(jnp.sum(kl, axis=-1))


def feature_reconstruction(f_real: jax.Array, f_fake: jax.Array) -> jax.Array:
  """L_llike = -log N(Dis_l(x) | Dis_l(x~), I) + const: half the squared error, summed over
  features, averaged over the batch."""
  return 0.5 * jnp.mean(jnp.sum(jnp.square(f_real - f_fake), axis=-1))


def encoder_objective(mu, logvar, f_real, f_recon) -> jax.Array:
  """E's loss: L_prior + L_llike."""
  return kl_prior(mu, logvar) + feature_reconstruction(f_real, f_recon)


def decoder_objective(adv: Adversary, recon_logits, prior_logits, llike, gamma) -> jax.Array:
  """G's loss from D's logits on x~ and x_p and L_llike: gamma L_llike + the two GAN terms."""
  return gamma * llike + adv.g_loss(recon_logits) + adv.g_loss(prior_logits)


def check(config) -> None:
  if config.latent_dist == "uniform":
    raise UserError("--strategy=vaegan's prior is N(0, I) (its KL term); drop "
                    "--latent_dist=uniform")


def build(config, spec) -> Strategy:
  latent_dim = config.latent_dim
  nets = encoder_networks(config, spec, 2 * latent_dim)
  g_tx, d_tx = generator_optimizer(config), adam(config.d_lr, config)
  adv = Adversary.from_config(config)

  def step(state, batch):
    x = batch["image"]
    n = x.shape[0]
    key_eps, key_p, key_d = jax.random.split(state.step_key(), 3)
    eps = jax.random.normal(key_eps, (n, latent_dim))
    z_p, _ = nets.latents(key_p, n)
    bs = state.batch_stats

    def autoencode(ep, gp):
      e, e_bs = apply_model(nets.encoder, ep, bs["encoder"], x, train=True)
      mu, logvar = posterior(e, latent_dim)
      # x~ and x_p in one generator batch: BatchNorm normalizes them together, as it will
      # normalize samples with the running statistics of both.
      out, g_bs = apply_model(nets.generator, gp, bs["generator"],
                              jnp.concatenate([reparameterize(mu, logvar, eps), z_p]),
                              train=True)
      return (mu, logvar, out), (e_bs, g_bs)

    ge = {"generator": state.params["generator"], "encoder": state.params["encoder"]}
    (mu, logvar, fakes), ae_pullback, (e_bs, g_bs) = jax.vjp(
        autoencode, ge["encoder"], ge["generator"], has_aux=True)
    # The real batch twice, so that real and fake examples pair up one to one (the WGAN-GP
    # interpolates pairs); every D loss is a mean, so its value and gradient are x's alone.
    d_params, d_opt, d_bs, metrics = update_discriminator(
        adv, nets.discriminator, d_tx, state, jnp.concatenate([x, x]), fakes, key_d)

    def d_out(v):  # the updated D's logits and Dis_l; D's examples are independent
      return apply_model(nets.discriminator, d_params, d_bs, v, train=True,
                         with_features="middle")[0]

    f_real = d_out(x)[1]

    def objectives(mu, logvar, fakes):
      logits, feats = d_out(fakes)
      llike = feature_reconstruction(f_real, feats[:n])
      return ((encoder_objective(mu, logvar, f_real, feats[:n]),
               decoder_objective(adv, logits[:n], logits[n:], llike, config.vaegan_gamma)),
              (kl_prior(mu, logvar), llike))

    (e_loss, g_loss), obj_pullback, (prior, llike) = jax.vjp(objectives, mu, logvar, fakes,
                                                             has_aux=True)
    old_opt = state.opt_state["g"]

    def update_ge(_):
      one, zero = jnp.ones_like(e_loss), jnp.zeros_like(g_loss)
      # d E's loss / d E's params and d G's loss / d G's params only: the cross terms (G's loss
      # through x~ into E, E's loss into G) are dead code, which XLA drops.
      e_grads = ae_pullback(obj_pullback((one, zero)))[0]
      g_grads = ae_pullback(obj_pullback((zero, one)))[1]
      grads = {"generator": g_grads, "encoder": e_grads}
      new_ge, new_opt = apply_gradients(g_tx, ge, old_opt, grads)
      return new_ge, new_opt, optax.tree.norm(g_grads), optax.tree.norm(e_grads)

    new_ge, g_opt, g_norm, e_norm = update_every(
        config.n_critic, state.step, update_ge, (ge, old_opt, jnp.zeros(()), jnp.zeros(())))

    state = state.advanced(
        params={**new_ge, "discriminator": d_params},
        batch_stats={"generator": g_bs, "encoder": e_bs, "discriminator": d_bs},
        opt_state={"g": g_opt, "d": d_opt})
    return state, {**metrics, "g_loss": g_loss, "e_loss": e_loss, "kl_prior": prior,
                   "feature_recon": llike, "g_grad_norm": g_norm, "e_grad_norm": e_norm}

  mean_code = lambda e: posterior(e, latent_dim)[0]
  return Strategy(nets=nets, init=adversarial_init(nets, config, spec, g_tx, d_tx),
                  phases=(Phase("gan", config.steps, step),),
                  reconstruct=generator_reconstruct(nets, code=mean_code),
                  ema_decay=config.ema_decay)
