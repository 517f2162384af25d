"""veegan: variational encoder enhancement (Srivastava et al. 2017).

A generator G: z -> x, z ~ p(z) of size latent_dim, and a reconstructor F: x -> z (the
'encoder' role), trained to invert G. F is a unit-variance Gaussian, p(z|x) = N(F(x), I), as
in the authors' notebook. A logistic discriminator on (x, z) pairs tells data pairs (x, z~),
z~ ~ N(F(x), I), label 1, from generated pairs (G(z), z), label 0:

  D:     min -E log D(x, z~) - E log(1 - D(G(z), z))              [+ --gp_weight, --r1_weight]
  G, F:  min O = -E l(G(z), z) + w E ||z - F(G(z))||^2 / 2

l = D's logit and w = --veegan_recon_weight (1). This is Algorithm 1 of the paper: its
generator term is the discriminator's estimate of log q(generated pair) / p(data pair), which
with our labels (data pairs = 1) is the minus logit at the optimal D; the second term is the
reconstructor's negative log-likelihood -log N(z | F(G(z)), I) up to a constant, summed over
z's dimensions and averaged over the batch. The reconstruction term is what fights mode
collapse: F must map G's samples back to the z that made them, so G cannot send many z to one x.
--veegan_log_sigmoid swaps the first term for the non-saturating -E log sigmoid(l), bounded
where -E l is not: an ablation. On mnist5k it changed nothing (docs/results/images.md): there
the reconstruction term is what fails, G writing z into pixel noise for F to read back.

The data pairs carry a *sampled* z~, not the deterministic F(x): F(x) lies on a set of x's
dimension, while the generated pairs' z fills all latent_dim dimensions, and D would separate
the two supports outright (then the generator term carries no signal).

F gets its gradient from the reconstruction term only: the adversarial term looks at (G(z), z),
where z is drawn, not reconstructed, and D's data pairs enter O nowhere (Algorithm 1). G and F
share one gradient of O and one Adam (--g_lr). The generator term needs D's logit to be a log
density ratio, so the game must be logistic: --loss=non_saturating (the default) or minimax,
which are the same step here. --update=simultaneous (the authors' code) takes O's gradient
against D before this step's update; the default alternates.
"""

import jax
import jax.numpy as jnp

from aegan_jax.adversarial import update_discriminator
from aegan_jax.errors import UserError
from aegan_jax.hyperparameters import Hyperparameter
from aegan_jax.models import apply_model
from aegan_jax.steps import pullback_update
from aegan_jax.strategies.base import (Strategy, joint_game, joint_step_end, joint_strategy,
                                       played_discriminator)

# As bigan: the joint D has no spectral norm, and the image-D techniques of gan_step do not
# apply. Label smoothing keeps D logistic; its optimal logit becomes log (1 - s) p / (q + s p),
# with p, q the data and generated pair densities: still increasing in p / q, so it still
# pulls generated pairs toward the data's, only less steeply.
TECHNIQUES = frozenset({"gp_weight", "r1_weight", "n_critic", "label_smoothing", "ema_decay",
                        "update"})
HYPERPARAMETERS = {  # its own flags (aegan_jax/hyperparameters.py), the paper's defaults
    "veegan_recon_weight": Hyperparameter(
        1.0, "VEEGAN: weight of the reconstructor's negative log-likelihood "
        "||z - F(G(z))||^2 / 2 (a unit-variance Gaussian F).", minimum=0),
    "veegan_log_sigmoid": Hyperparameter(
        False, "VEEGAN: G's adversarial term is -log sigmoid(D's logit) (the non-saturating "
        "GAN's) instead of the paper's -logit."),
}


def check(config) -> None:
  if config.loss not in ("non_saturating", "minimax"):
    raise UserError(f"--strategy=veegan reads D's logit as a log density ratio, which needs a "
                    f"logistic D; --loss={config.loss} has none: use --loss=non_saturating")


def generator_objective(fake_pair_logits, z, z_rec, recon_weight, log_sigmoid=False):
  """O above from D's logits on (G(z), z), the drawn z and F(G(z)); returns (O, the
  reconstructor's negative log-likelihood E ||z - F(G(z))||^2 / 2)."""
  recon = 0.5 * jnp.mean(jnp.sum(jnp.square(z - z_rec), axis=-1))
  scores = jax.nn.log_sigmoid(fake_pair_logits) if log_sigmoid else fake_pair_logits
  return -jnp.mean(scores) + recon_weight * recon, recon


def data_codes(codes: jax.Array, key: jax.Array) -> jax.Array:
  """z~ ~ N(F(x), I): the data pairs' codes, sampled from the reconstructor's Gaussian."""
  return codes + jax.random.normal(key, codes.shape, codes.dtype)


def build(config, spec) -> Strategy:
  check(config)  # also done by strategies.build; here so no direct caller gets a non-logistic D
  nets, g_tx, d_tx, adv = joint_game(config, spec, stochastic_encoder=False)

  def step(state, batch):
    x = batch["image"]
    key_z, key_d, key_code = jax.random.split(state.step_key(), 3)
    z, _ = nets.latents(key_z, x.shape[0])
    bs = state.batch_stats

    # G(z) and F(G(z)) run forward once: the D update uses G(z), and the G/F gradient is the
    # updated D's gradient at G(z), plus the l2 term's, pulled back through both networks.
    def forward(p):
      fake, g_bs = apply_model(nets.generator, p["generator"], bs["generator"], z, train=True)
      z_rec, e_bs = apply_model(nets.encoder, p["encoder"], bs["encoder"], fake, train=True)
      return (fake, z_rec), (g_bs, e_bs)

    gf = {"generator": state.params["generator"], "encoder": state.params["encoder"]}
    (fake, z_rec), pullback, (g_bs, e_bs) = jax.vjp(forward, gf, has_aux=True)
    # F's codes of the data only label D's real pairs; no gradient reaches F from them.
    code, _ = apply_model(nets.encoder, gf["encoder"], bs["encoder"], x, train=True)
    d_params, d_opt, d_bs, metrics = update_discriminator(
        adv, nets.discriminator, d_tx, state, (x, data_codes(code, key_code)), (fake, z), key_d)
    played = played_discriminator(config, state, d_params, d_bs)

    def objective(outputs):
      fake, z_rec = outputs
      logits, _ = apply_model(nets.discriminator, *played, (fake, z), train=True)
      return generator_objective(logits, z, z_rec, config.veegan_recon_weight,
                                 config.veegan_log_sigmoid)

    (g_loss, z_recon), output_grads = jax.value_and_grad(objective, has_aux=True)((fake, z_rec))

    gf, g_opt, g_norm = pullback_update(g_tx, gf, state.opt_state["g"], pullback,
                                         output_grads, config.n_critic, state.step)
    state = joint_step_end(state, gf, g_opt, g_bs, e_bs, d_params, d_opt, d_bs)
    return state, {**metrics, "g_loss": g_loss, "z_recon": z_recon, "g_grad_norm": g_norm}

  return joint_strategy(nets, config, spec, g_tx, d_tx, step)
