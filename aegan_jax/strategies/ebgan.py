"""ebgan: the energy-based GAN (Zhao et al. 2016), with the pull-away term (EBGAN-PT).

D is an autoencoder, Dec_D(Enc_D(x)) (models/composite.py), and its energy is the Euclidean
norm of its reconstruction error over every dimension of one example, neither squared nor
averaged over pixels (the paper's definition):

  D(x) = ||Dec_D(Enc_D(x)) - x||_2

so the margin is in units of that norm (an MSE energy, per-pixel mean of squares, would need a
far smaller m).

With m = --ebgan_margin (auto: the paper's MNIST value 10 on images; on real-valued data the
root-mean-square norm of the training examples, see auto_margin) and S = Enc_D(G(z)) the codes
of the fake batch (N examples):

  D:  min E D(x) + E max(0, m - D(G(z)))
  G:  min E D(G(z)) + w PT(S),   w = --ebgan_pt_weight (0.1)
  PT(S) = 1/(N(N-1)) sum_{i != j} (s_i^T s_j / (||s_i|| ||s_j||))^2

D learns low energy (good reconstructions) on data and pushes fakes up to the margin, past
which they cost it nothing; G lowers the energy of its samples. The pull-away term, the mean
squared cosine similarity between the codes of distinct fakes, is low when the fakes are
spread out in D's code space: it discourages G from collapsing onto one low-energy mode.
Each step is a D update, then a G update against the updated D. --loss does not apply.
"""

import jax
import jax.numpy as jnp

from aegan_jax.errors import UserError
from aegan_jax.hyperparameters import Hyperparameter
from aegan_jax.models import apply_model
from aegan_jax.state import adam, apply_gradients, generator_optimizer
from aegan_jax.strategies.base import (Phase, Strategy, adversarial_init, autoencoder_networks,
                                       discriminator_reconstruct, energy_d_update)

# The energy replaces the adversarial game and every D regularizer of adversarial.py; the
# generator's EMA is applied by the trainer, whatever the strategy.
TECHNIQUES = frozenset({"ema_decay"})
HYPERPARAMETERS = {  # its own flags (aegan_jax/hyperparameters.py), the paper's defaults
    "ebgan_margin": Hyperparameter(
        -1.0, "EBGAN: margin m of max(0, m - D(G(z))), in units of the energy ||x - D(x)||_2. "
        "-1 (auto): the paper's MNIST value 10 on images; on real-valued data (the 2-D "
        "mixtures) the root-mean-square norm of the training examples, the same rule that "
        "gives MNIST about 9.4.", minimum=0, auto=-1),
    "ebgan_pt_weight": Hyperparameter(0.1, "EBGAN: pull-away term weight.", minimum=0),
}

# Keeps the gradient of a norm finite where the norm is 0 (a perfect reconstruction, a zero code).
_EPS = 1e-12


def energy(x: jax.Array, recon: jax.Array) -> jax.Array:
  """D(x) = ||recon - x||_2 per example, over every non-batch dimension: shape [B]."""
  diff = (recon - x).reshape(x.shape[0], -1)
  return jnp.sqrt(jnp.sum(jnp.square(diff), axis=1) + _EPS)


def discriminator_loss(real_energy: jax.Array, fake_energy: jax.Array,
                       margin: float) -> jax.Array:
  """E D(x) + E max(0, m - D(G(z))), from per-example energies."""
  return jnp.mean(real_energy) + jnp.mean(jax.nn.relu(margin - fake_energy))


def pull_away(codes: jax.Array) -> jax.Array:
  """PT(S): the mean of the squared cosine similarities over the N(N-1) ordered pairs of
  distinct rows of `codes` [N, d]; 0 for a batch of one (no pairs)."""
  n = codes.shape[0]
  if n < 2:
    return jnp.zeros((), codes.dtype)
  unit = codes / jnp.sqrt(jnp.sum(jnp.square(codes), axis=1, keepdims=True) + _EPS)
  cos = unit @ unit.T
  # Mask the diagonal rather than subtract it: with the epsilon it is not exactly 1.
  off_diagonal = jnp.where(jnp.eye(n, dtype=bool), 0.0, jnp.square(cos))
  return jnp.sum(off_diagonal) / (n * (n - 1))


def check(config) -> None:
  if config.loss != "non_saturating":
    raise UserError(f"--strategy=ebgan trains its discriminator on its own energy, the "
                    f"autoencoder's reconstruction error with a margin; --loss does not "
                    f"apply: drop --loss={config.loss}")


def auto_margin(config, spec) -> float:
  """--ebgan_margin, or with -1 the data's energy scale: the paper's 10 on images (MNIST's
  examples have a root-mean-square norm of about 9.4), and on real-valued data the RMS norm
  of the training examples (the grid's 4, the ring's 1), so the margin is neither out of
  reach nor trivially met."""
  if config.ebgan_margin >= 0:
    return config.ebgan_margin
  if spec.unit_range or not spec.rms_norm:
    return 10.0
  return spec.rms_norm


def build(config, spec) -> Strategy:
  nets = autoencoder_networks(config, spec)
  g_tx, d_tx = generator_optimizer(config), adam(config.d_lr, config)
  margin, pt_weight = auto_margin(config, spec), config.ebgan_pt_weight

  def step(state, batch):
    x = batch["image"]
    z, _ = nets.latents(state.step_key(), x.shape[0])
    bs = state.batch_stats

    # One generator forward pass serves both updates (as in steps.gan_step): the D update
    # reads the fakes, and G's gradient is the updated D's gradient at them, pulled back.
    def generate(gp):
      return apply_model(nets.generator, gp, bs["generator"], z, train=True)

    fake, g_pullback, g_bs = jax.vjp(generate, state.params["generator"], has_aux=True)

    d_params, d_opt, d_bs, d_loss, real_e, fake_e = energy_d_update(
        nets, d_tx, state, x, fake, energy, lambda r, f: discriminator_loss(r, f, margin))

    def g_objective(v):
      (recon, codes), _ = apply_model(nets.discriminator, d_params, d_bs, v, train=True)
      pt = pull_away(codes)
      return jnp.mean(energy(v, recon)) + pt_weight * pt, pt

    (g_loss, pt), fake_grad = jax.value_and_grad(g_objective, has_aux=True)(fake)
    (g_grads,) = g_pullback(fake_grad)
    g_params, g_opt = apply_gradients(g_tx, state.params["generator"], state.opt_state["g"],
                                      g_grads)
    state = state.advanced(
        params={"generator": g_params, "discriminator": d_params},
        batch_stats={"generator": g_bs, "discriminator": d_bs},
        opt_state={"g": g_opt, "d": d_opt})
    return state, {"d_loss": d_loss, "g_loss": g_loss, "real_energy": jnp.mean(real_e),
                   "fake_energy": jnp.mean(fake_e), "pull_away": pt}

  return Strategy(nets=nets, init=adversarial_init(nets, config, spec, g_tx, d_tx),
                  phases=(Phase("gan", config.steps, step),),
                  reconstruct=discriminator_reconstruct(nets), ema_decay=config.ema_decay)
