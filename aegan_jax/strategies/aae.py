"""aae: the adversarial autoencoder (Makhzani et al. 2015).

A deterministic autoencoder whose aggregated posterior q(z) = E_x delta(z - E(x)) is matched
to the prior p(z) = N(0, I) by a GAN in code space: the discriminator D_z sees latent_dim
vectors, prior samples as its real data and codes as its fakes, and the encoder E is its
generator. The decoder is the generator G, so samples are G(z), z ~ N(0, I). Each step does
the paper's two phases on one batch x:

  reconstruction:  E, G:  min L_rec(G(E(x)), x)                         (Adam --ae_lr, 'ae')
  regularization:  D_z:   min d_loss(D_z(z), D_z(E(x))),  z ~ N(0, I)   [+ --gp_weight, --r1_weight]
                   E:     min g_loss(D_z(E(x)))                         (Adam --g_lr, 'e')

L_rec is --recon_loss on G's logits for images (mse: mean (sigmoid(l) - x)^2, i.e. the
squared error in data space; bce: the Bernoulli likelihood), and the squared error for
real-valued data, where bce is refused. The regularization phase uses the encoder that the
reconstruction phase just updated, and E's adversarial step the updated D_z (Makhzani et al.
run the phases in sequence on each minibatch). G gets no gradient from the latent game.
D_z is the mlp discriminator (--d_hidden or --mlp_hidden, --spectral_norm) for every arch, since its input
is a vector; the paper's has two layers of 1000 units. With --n_critic=k, E's adversarial step
comes on every k-th step only; reconstruction and D_z train every step.
"""

import math

import jax
import jax.numpy as jnp
import optax

from aegan_jax.adversarial import Adversary, update_discriminator
from aegan_jax.errors import UserError
from aegan_jax.losses import RECONSTRUCTION, mse_linear
from aegan_jax.models import apply_model, mlp
from aegan_jax.state import adam, apply_gradients, generator_optimizer
from aegan_jax.steps import Networks, update_every
from aegan_jax.strategies.base import (D_TECHNIQUES, Phase, Strategy, generator_reconstruct,
                                       init_networks, make_networks, new_state)

TECHNIQUES = D_TECHNIQUES


def reconstruction_loss(name: str, unit_range: bool):
  """L_rec(outputs, x) on G's pre-sigmoid outputs: --recon_loss for images, squared error for
  real-valued data (whose generator has no sigmoid)."""
  if unit_range:
    return RECONSTRUCTION[name]
  if name != "mse":
    raise UserError(f"--recon_loss={name} needs data in [0, 1] (images); this dataset is "
                    f"real-valued: use --recon_loss=mse")
  return mse_linear


def latent_networks(config, spec) -> Networks:
  """E: x -> z (latent_dim numbers), G(z) = out(Dec(z)), and D_z on latent_dim vectors.

  The encoder is deterministic, so the codes of data of d dimensions lie on a set of at most
  d dimensions: with latent_dim > d they cannot match N(0, I) at all (D_z wins outright and
  the samples decode from codes the encoder never produced). Refused, in one line.
  """
  data_dim = math.prod(spec.shape)
  if config.latent_dim > data_dim:
    raise UserError(f"--strategy=aae matches deterministic codes of {data_dim}-dimensional "
                    f"data to N(0, I) in --latent_dim={config.latent_dim} dimensions, which "
                    f"they cannot fill: use --latent_dim={data_dim} or less")
  return make_networks(config, spec, discriminator=mlp.discriminator(config),
                       encoder_code_dim=config.latent_dim)


def build(config, spec) -> Strategy:
  nets = latent_networks(config, spec)
  recon_loss = reconstruction_loss(config.recon_loss, spec.unit_range)
  # G without its final sigmoid (the same parameters): the reconstruction losses take logits,
  # which keeps bce numerically stable.
  logit_generator = nets.generator.clone(unit_range=False)
  ae_tx, d_tx, e_tx = (adam(config.ae_lr, config), adam(config.d_lr, config),
                       generator_optimizer(config))
  adv = Adversary.from_config(config)

  def init(key):
    # D_z's input is a code, not an example.
    params, batch_stats = init_networks(nets, jax.random.fold_in(key, 1), spec.shape,
                                        d_input=lambda x, z: z)
    opt_state = {"ae": ae_tx.init({"encoder": params["encoder"],
                                   "generator": params["generator"]}),
                 "d": d_tx.init(params["discriminator"]),
                 "e": e_tx.init(params["encoder"])}
    return new_state(key, params, batch_stats, opt_state, config=config)

  def step(state, batch):
    x = batch["image"]
    key_z, key_d = jax.random.split(state.step_key())
    bs = state.batch_stats

    # Reconstruction phase.
    def recon_objective(p):
      code, e_bs = apply_model(nets.encoder, p["encoder"], bs["encoder"], x, train=True)
      logits, g_bs = apply_model(logit_generator, p["generator"], bs["generator"], code,
                                 train=True)
      return recon_loss(logits, x), (e_bs, g_bs, logits)

    ae = {"encoder": state.params["encoder"], "generator": state.params["generator"]}
    (rec, (e_bs, g_bs, logits)), grads = jax.value_and_grad(recon_objective, has_aux=True)(ae)
    ae, ae_opt = apply_gradients(ae_tx, ae, state.opt_state["ae"], grads)
    state = state.replace(params={**state.params, **ae},
                          batch_stats={**bs, "encoder": e_bs, "generator": g_bs},
                          opt_state={**state.opt_state, "ae": ae_opt})

    # Regularization phase: one encoder pass (pullback kept) serves D_z's fakes and E's step.
    def encode(ep):
      return apply_model(nets.encoder, ep, e_bs, x, train=True)

    codes, e_pullback, e_bs = jax.vjp(encode, ae["encoder"], has_aux=True)
    z, _ = nets.latents(key_z, x.shape[0])
    d_params, d_opt, d_bs, metrics = update_discriminator(adv, nets.discriminator, d_tx, state,
                                                          z, codes, key_d)

    def fool(c):
      return adv.g_loss(apply_model(nets.discriminator, d_params, d_bs, c, train=True)[0])

    g_loss, code_grad = jax.value_and_grad(fool)(codes)
    old_e, old_opt = ae["encoder"], state.opt_state["e"]

    def update_e(_):
      (e_grads,) = e_pullback(code_grad)
      new_e, new_opt = apply_gradients(e_tx, old_e, old_opt, e_grads)
      return new_e, new_opt, optax.tree.norm(e_grads)

    e_params, e_opt, e_norm = update_every(config.n_critic, state.step, update_e,
                                           (old_e, old_opt, jnp.zeros(())))

    state = state.advanced(
        params={"encoder": e_params, "discriminator": d_params},
        batch_stats={"encoder": e_bs, "discriminator": d_bs},
        opt_state={"d": d_opt, "e": e_opt})
    return state, {**metrics, "recon_loss": rec,
                   "recon_mse": jnp.mean(jnp.square(nets.output(logits) - x)),
                   "g_loss": g_loss, "e_grad_norm": e_norm, "ae_grad_norm": optax.tree.norm(grads)}

  return Strategy(nets=nets, init=init, phases=(Phase("gan", config.steps, step),),
                  reconstruct=generator_reconstruct(nets), ema_decay=config.ema_decay)
