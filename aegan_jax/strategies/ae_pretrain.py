"""ae_pretrain: the seed's strategy. Pretrain an autoencoder, build the generator from it.

Phase 1 ('pretrain', --pretrain_steps): encoder E and decoder Dec minimize the reconstruction
loss ||x - Dec(E(x)[, z])||^2 (or Bernoulli, --recon_loss) on real data.

Transition: E encodes the whole training set; a Gaussian N(mu, C) is fitted to the codes and
written as an affine map h = mu + W z with W W^T = C (W = U sqrt(Lambda), the principal axes;
when latent_dim < code_dim, the top latent_dim axes, i.e. probabilistic PCA). Noise
z ~ N(0, I) then lands where the encoder puts real data, so the decoder sees the inputs it was
trained on and the first samples already look like data. The generator is
G(z[, z']) = sigmoid(Dec(h = mu + W z[, z'])) with Dec's pretrained weights as its start
(no sigmoid for real-valued data).

Phase 2 ('gan', --steps): gan_step (D update, then G update) with --loss. With
--code_mapping=learned (default) the affine map is trained with the decoder, so the generator
may move mass between regions of code space that the Gaussian fit got wrong; with 'gaussian' it
stays fixed and only the decoder adapts. Every regularizer and improved technique of gan
applies; --encoder_feature_weight matches the mean pretrained (frozen) code of real and fake
batches, using what the autoencoder learned as the feature space. --d_warmup_steps puts a phase
('d_warmup') between the two in which D alone trains against the pretrained generator.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aegan_jax import code_prior
from aegan_jax.adversarial import Adversary
from aegan_jax.errors import UserError
from aegan_jax.hyperparameters import Hyperparameter
from aegan_jax.losses import RECONSTRUCTION, mse_linear
from aegan_jax.models import apply_model
from aegan_jax.state import adam, apply_gradients, generator_optimizer
from aegan_jax.steps import GeneratorTechniques, ae_step, gan_step
from aegan_jax.strategies.base import (GAN_TECHNIQUES, Phase, Strategy, build_networks,
                                       decoder_reconstruct, init_networks, new_state,
                                       packed_input, restart_averages)

TECHNIQUES = GAN_TECHNIQUES

# Its own flags (aegan_jax/hyperparameters.py); the other strategies refuse them.
HYPERPARAMETERS = {
    "anchor_weight": Hyperparameter(
        0.0, "ae_pretrain: keep the reconstruction loss in the adversarial phase: after each "
        "GAN step, the generator's decoder takes an Adam step (--g_lr) on this weight times "
        "||x - Dec(E(x))||^2 with the pretrained, frozen encoder E; 0 = off.", minimum=0),
    "d_warmup_steps": Hyperparameter(
        0, "ae_pretrain: steps at the start of the adversarial phase in which only D trains, "
        "against the pretrained generator held still, so G's first gradients come from a D "
        "that has learned where G and the data differ rather than from a random one; 0 = off.",
        minimum=0),
    "ae_lr_decay": Hyperparameter(
        False, "ae_pretrain: cosine-decay the autoencoder's learning rate to 0 over "
        "--pretrain_steps (a constant Adam step leaves the codes, and so the decoder's "
        "precision, noisy)."),
    "code_components": Hyperparameter(
        1, "ae_pretrain: Gaussian components fitted to the training codes (EM); noise lands "
        "in one of them, chosen with the fitted weights. 1 = the single Gaussian (PCA map).",
        minimum=1),
    "code_fit_restarts": Hyperparameter(
        1, "ae_pretrain: EM starts for the code mixture; the most likely fit is kept.",
        minimum=1),
}


def build(config, spec) -> Strategy:
  if config.pretrain_steps <= 0:
    raise UserError("--strategy=ae_pretrain needs --pretrain_steps > 0; "
                    "for no pretraining use --strategy=gan")
  if config.latent_dist == "uniform":
    raise UserError("--strategy=ae_pretrain maps z ~ N(0, I) onto a Gaussian fitted to the "
                    "codes; --latent_dist=uniform would give the wrong covariance: drop it")
  nets = build_networks(config, spec, autoencoder=True)
  ae_lr = (optax.cosine_decay_schedule(config.ae_lr, config.pretrain_steps)
           if config.ae_lr_decay else config.ae_lr)
  ae_tx, d_tx = adam(ae_lr, config), adam(config.d_lr, config)
  anchor_tx = adam(config.g_lr, config)  # --anchor_weight's decoder step
  if config.code_mapping == "gaussian":  # keep the fitted map fixed, train the decoder only
    g_tx = optax.multi_transform(
        {"train": generator_optimizer(config), "fixed": optax.set_to_zero()},
        lambda p: {k: ("fixed" if k == "mapping" else "train") for k in p})
  else:
    g_tx = generator_optimizer(config)
  if spec.unit_range:
    recon = RECONSTRUCTION[config.recon_loss]
  elif config.recon_loss == "mse":
    recon = mse_linear
  else:
    raise UserError("--recon_loss=bce needs data in [0, 1] (images); this dataset is "
                    "real-valued: use --recon_loss=mse")

  def init(key):
    params, batch_stats = init_networks(nets, jax.random.fold_in(key, 1), spec.shape,
                                        packed_input(config.pack))
    opt_state = {
        "ae": ae_tx.init({"encoder": params["encoder"], "decoder": params["decoder"]}),
        "g": g_tx.init(params["generator"]),
        "d": d_tx.init(params["discriminator"])}
    if config.anchor_weight:  # restarted at the transition; here so checkpoints keep one shape
      opt_state["anchor"] = anchor_tx.init(params["decoder"])
    return new_state(key, params, batch_stats, opt_state, config=config)

  @jax.jit
  def encode(params, batch_stats, images):
    h, _ = apply_model(nets.encoder, params, batch_stats, images, train=False)
    return h

  def begin_gan(state, dataset):
    codes = np.concatenate([
        np.asarray(encode(state.params["encoder"], state.batch_stats["encoder"], chunk))
        for chunk in dataset.train_chunks(1000)])
    mapping = code_prior.mixture_map(codes, config.latent_dim, config.code_components,
                                     config.seed, config.code_fit_restarts)
    copy = lambda tree: jax.tree.map(jnp.copy, tree)  # own buffers: the state is donated
    g_params = {"mapping": jax.tree.map(jnp.asarray, mapping),
                "decoder": copy(state.params["decoder"])}
    g_bs = ({"decoder": copy(state.batch_stats["decoder"])}
            if state.batch_stats["decoder"] else {})
    anchor = {"anchor": anchor_tx.init(g_params["decoder"])} if config.anchor_weight else {}
    return restart_averages(state.replace(
        params={**state.params, "generator": g_params},
        batch_stats={**state.batch_stats, "generator": g_bs},
        opt_state={**state.opt_state, "g": g_tx.init(g_params), **anchor}))

  adversarial = functools.partial(gan_step, nets, g_tx, d_tx, Adversary.from_config(config),
                                  GeneratorTechniques.from_config(config))

  def anchored(state, batch):
    """The GAN step, then the decoder's reconstruction step (--anchor_weight): what the
    autoencoder learned stays a term of the decoder's objective."""
    state, metrics = adversarial(state, batch)
    x = batch["image"]
    h = encode(state.params["encoder"], state.batch_stats["encoder"], x)
    noise = nets.decoder_noise(jax.random.fold_in(state.step_key(), 1), x.shape[0])
    g_params = state.params["generator"]

    def loss(decoder):
      logits, _ = apply_model(nets.decoder, decoder, state.batch_stats["generator"].get(
          "decoder", {}), h, noise, train=False)
      return recon(logits, x)

    value, grads = jax.value_and_grad(loss)(g_params["decoder"])
    grads = jax.tree.map(lambda g: config.anchor_weight * g, grads)
    decoder, anchor_opt = apply_gradients(anchor_tx, g_params["decoder"],
                                          state.opt_state["anchor"], grads)
    state = state.replace(params={**state.params, "generator": {**g_params, "decoder": decoder}},
                          opt_state={**state.opt_state, "anchor": anchor_opt})
    return state, {**metrics, "anchor_recon": value}

  def discriminator_only(state, batch):
    """--d_warmup_steps: the GAN step with the generator (weights, statistics, optimizer)
    held where it was, so only D learns."""
    new, metrics = adversarial(state, batch)
    keep = lambda field, key: {**getattr(new, field), key: getattr(state, field)[key]}
    return new.replace(params=keep("params", "generator"),
                       batch_stats=keep("batch_stats", "generator"),
                       opt_state=keep("opt_state", "g")), metrics

  warmup = config.d_warmup_steps
  phases = (
      Phase("pretrain", config.pretrain_steps,
            functools.partial(ae_step, nets, ae_tx, recon), adversarial=False),
      *([Phase("d_warmup", warmup, discriminator_only, begin=begin_gan)] if warmup else []),
      Phase("gan", config.steps, anchored if config.anchor_weight else adversarial,
            begin=None if warmup else begin_gan),
  )
  return Strategy(nets=nets, init=init, phases=phases, reconstruct=decoder_reconstruct(nets),
                  ema_decay=config.ema_decay)
