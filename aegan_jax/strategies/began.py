"""began: the boundary equilibrium GAN (Berthelot et al. 2017).

D is an autoencoder (models/composite.py), the same networks as ebgan; the loss of an example
is its mean absolute reconstruction error, per pixel (the paper's eta = 1):

  L(v) = mean |v - Dec_D(Enc_D(v))|

z is drawn from U[-1, 1]^latent_dim, as in the paper (--latent_dist=auto; normal overrides).
With gamma = --began_gamma (0.5) and lambda_k = --began_lambda_k (0.001):

  D:  min E L(x) - k_t E L(G(z))
  G:  min E L(G(z))
  k_{t+1} = clip(k_t + lambda_k (gamma E L(x) - E L(G(z))), 0, 1)     (k_0 = 0)
  M = E L(x) + |gamma E L(x) - E L(G(z))|                             (the 'convergence' metric)

The balance k_t is a proportional controller that holds E L(G(z)) = gamma E L(x): while D
reconstructs fakes too well, k grows and D pushes their loss up; while G falls behind, k
shrinks and D attends to the data. gamma sets diversity against quality (lower: sharper,
less diverse). M falls as training converges. Each step is a D update, then a G update
against the updated D, then the k update from the batch means of the D step's L values;
k lives in state.extras['k']. --loss does not apply.
"""

import jax
import jax.numpy as jnp

from aegan_jax.errors import UserError
from aegan_jax.hyperparameters import Hyperparameter
from aegan_jax.models import apply_model
from aegan_jax.state import adam, apply_gradients, generator_optimizer
from aegan_jax.strategies.base import (Phase, Strategy, adversarial_init, autoencoder_networks,
                                       discriminator_reconstruct, energy_d_update)

# The k_t balance replaces the adversarial game and every D regularizer of adversarial.py;
# the generator's EMA is applied by the trainer, whatever the strategy.
TECHNIQUES = frozenset({"ema_decay"})
HYPERPARAMETERS = {  # its own flags (aegan_jax/hyperparameters.py), the paper's defaults
    "began_gamma": Hyperparameter(0.5, "BEGAN: diversity ratio gamma = E L(G(z)) / E L(x).",
                                  above=0, maximum=1, hint="(BEGAN uses 0.5 to 0.75)"),
    "began_lambda_k": Hyperparameter(0.001, "BEGAN: learning rate of the balance k_t.",
                                     minimum=0),
}


def l1_energy(x: jax.Array, recon: jax.Array) -> jax.Array:
  """L(v) = mean |v - D(v)| per example, over every non-batch dimension: shape [B]."""
  return jnp.mean(jnp.abs(x - recon).reshape(x.shape[0], -1), axis=1)


def began_losses(real_l: jax.Array, fake_l: jax.Array, k: jax.Array):
  """(D loss, G loss) = (E L(x) - k E L(G(z)), E L(G(z))); k is a constant to both."""
  k = jax.lax.stop_gradient(k)
  return jnp.mean(real_l) - k * jnp.mean(fake_l), jnp.mean(fake_l)


def update_k(k: jax.Array, real_l: jax.Array, fake_l: jax.Array, gamma: float,
             lambda_k: float) -> jax.Array:
  """k_{t+1} = clip(k_t + lambda_k (gamma E L(x) - E L(G(z))), 0, 1)."""
  balance = gamma * jnp.mean(real_l) - jnp.mean(fake_l)
  return jnp.clip(k + lambda_k * balance, 0.0, 1.0)


def convergence(real_l: jax.Array, fake_l: jax.Array, gamma: float) -> jax.Array:
  """M = E L(x) + |gamma E L(x) - E L(G(z))|."""
  real = jnp.mean(real_l)
  return real + jnp.abs(gamma * real - jnp.mean(fake_l))


def check(config) -> None:
  if config.loss != "non_saturating":
    raise UserError(f"--strategy=began trains its discriminator on its own L1 energy with "
                    f"the k_t balance; --loss does not apply: drop --loss={config.loss}")


def build(config, spec) -> Strategy:
  nets = autoencoder_networks(config, spec, latent_dist="uniform")  # z ~ U[-1, 1] (the paper)
  g_tx, d_tx = generator_optimizer(config), adam(config.d_lr, config)
  gamma, lambda_k = config.began_gamma, config.began_lambda_k

  def step(state, batch):
    x = batch["image"]
    z, _ = nets.latents(state.step_key(), x.shape[0])
    bs = state.batch_stats
    k = state.extras["k"]

    # One generator forward pass serves both updates (as in steps.gan_step): the D update
    # reads the fakes, and G's gradient is the updated D's gradient at them, pulled back.
    def generate(gp):
      return apply_model(nets.generator, gp, bs["generator"], z, train=True)

    fake, g_pullback, g_bs = jax.vjp(generate, state.params["generator"], has_aux=True)

    d_params, d_opt, d_bs, d_loss, real_l, fake_l = energy_d_update(
        nets, d_tx, state, x, fake, l1_energy, lambda r, f: began_losses(r, f, k)[0])

    def g_objective(v):
      (recon, _), _ = apply_model(nets.discriminator, d_params, d_bs, v, train=True)
      _, g_loss = began_losses(real_l, l1_energy(v, recon), k)  # reads only L(G(z))
      return g_loss

    g_loss, fake_grad = jax.value_and_grad(g_objective)(fake)
    (g_grads,) = g_pullback(fake_grad)
    g_params, g_opt = apply_gradients(g_tx, state.params["generator"], state.opt_state["g"],
                                      g_grads)
    new_k = update_k(k, real_l, fake_l, gamma, lambda_k)
    state = state.advanced(
        params={"generator": g_params, "discriminator": d_params},
        batch_stats={"generator": g_bs, "discriminator": d_bs},
        opt_state={"g": g_opt, "d": d_opt},
        extras={"k": new_k})
    return state, {"d_loss": d_loss, "g_loss": g_loss, "k": new_k,
                   "convergence": convergence(real_l, fake_l, gamma),
                   "real_energy": jnp.mean(real_l), "fake_energy": jnp.mean(fake_l)}

  init = adversarial_init(nets, config, spec, g_tx, d_tx,
                          extras={"k": jnp.zeros((), jnp.float32)})
  return Strategy(nets=nets, init=init, phases=(Phase("gan", config.steps, step),),
                  reconstruct=discriminator_reconstruct(nets), ema_decay=config.ema_decay)
