"""The two update steps every strategy is built from, as pure functions.

`ae_step` trains encoder + decoder on the reconstruction objective; `gan_step` does one
discriminator update, then one generator update against the updated discriminator. Both take
(state, batch) and return (state, metrics); strategies bind the networks, optimizers and losses
with functools.partial, and the trainer wraps the result in `jax.jit(..., donate_argnums=0)`.
Their randomness comes from `state.step_key()`, a function of (seed, step).
"""

import dataclasses
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from aegan_jax.losses import AdversarialLoss
from aegan_jax.models import apply_model
from aegan_jax.state import TrainState, apply_gradients

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Networks:
  """The modules of one run (static under jit) and the shapes of their noise inputs."""
  generator: nn.Module
  discriminator: nn.Module
  latent_dim: int
  decoder_noise_dim: int = 0
  encoder: Optional[nn.Module] = None
  decoder: Optional[nn.Module] = None

  def output(self, logits: jax.Array) -> jax.Array:
    """The decoder's outputs in data space: sigmoid for images, identity for real data."""
    return jax.nn.sigmoid(logits) if self.generator.unit_range else logits

  def decoder_noise(self, key: jax.Array, n: int) -> Optional[jax.Array]:
    """The seed's second decoder input z in x' = Dec(h, z); None when switched off."""
    if not self.decoder_noise_dim:
      return None
    return jax.random.normal(key, (n, self.decoder_noise_dim))

  def latents(self, key: jax.Array, n: int) -> tuple[jax.Array, Optional[jax.Array]]:
    kz, kn = jax.random.split(key)
    return jax.random.normal(kz, (n, self.latent_dim)), self.decoder_noise(kn, n)


def ae_step(nets: Networks, tx: optax.GradientTransformation, recon_loss, state: TrainState,
            batch: Batch) -> tuple[TrainState, Metrics]:
  """One optimizer step on recon_loss(Dec(E(x)[, z]), x) for encoder and decoder together."""
  x = batch["image"]
  noise = nets.decoder_noise(state.step_key(), x.shape[0])
  bs = state.batch_stats

  def objective(p):
    h, e_bs = apply_model(nets.encoder, p["encoder"], bs["encoder"], x, train=True)
    logits, d_bs = apply_model(nets.decoder, p["decoder"], bs["decoder"], h, noise, train=True)
    return recon_loss(logits, x), (e_bs, d_bs, logits)

  ae_params = {"encoder": state.params["encoder"], "decoder": state.params["decoder"]}
  (loss, (e_bs, d_bs, logits)), grads = jax.value_and_grad(objective, has_aux=True)(ae_params)
  ae_params, opt = apply_gradients(tx, ae_params, state.opt_state["ae"], grads)
  state = state.replace(
      step=state.step + 1,
      params={**state.params, **ae_params},
      batch_stats={**bs, "encoder": e_bs, "decoder": d_bs},
      opt_state={**state.opt_state, "ae": opt})
  metrics = {"recon_loss": loss,
             "recon_mse": jnp.mean(jnp.square(nets.output(logits) - x)),
             "ae_grad_norm": optax.tree.norm(grads)}
  return state, metrics


def gan_step(nets: Networks, g_tx: optax.GradientTransformation,
             d_tx: optax.GradientTransformation, loss: AdversarialLoss, state: TrainState,
             batch: Batch) -> tuple[TrainState, Metrics]:
  """One D update on real and fake examples, then one G update against the new D.

  The generator runs forward once: jax.vjp keeps its pullback, the D update uses the fakes,
  and the G gradient is the updated D's gradient at those same fakes pulled back through G.
  That is the same math as a second forward pass with the same z (BatchNorm in train mode is
  a deterministic function of the batch), at two thirds of the generator's cost.
  """
  real = batch["image"]
  n = real.shape[0]
  z, noise = nets.latents(state.step_key(), n)
  bs = state.batch_stats

  def generate(gp):
    return apply_model(nets.generator, gp, bs["generator"], z, noise, train=True)

  fake, g_pullback, g_bs = jax.vjp(generate, state.params["generator"], has_aux=True)

  def d_objective(dp):
    # One pass over real and fake together; valid because D has no batch-coupled layers.
    logits, d_bs = apply_model(nets.discriminator, dp, bs["discriminator"],
                               jnp.concatenate([real, fake]), train=True)
    real_logits, fake_logits = logits[:n], logits[n:]
    return loss.d_loss(real_logits, fake_logits), (d_bs, real_logits, fake_logits)

  (d_loss, (d_bs, real_logits, fake_logits)), d_grads = jax.value_and_grad(
      d_objective, has_aux=True)(state.params["discriminator"])
  d_params, d_opt = apply_gradients(d_tx, state.params["discriminator"],
                                    state.opt_state["d"], d_grads)

  def g_objective(x):
    logits, _ = apply_model(nets.discriminator, d_params, d_bs, x, train=True)
    return loss.g_loss(logits)

  g_loss, fake_grad = jax.value_and_grad(g_objective)(fake)
  (g_grads,) = g_pullback(fake_grad)
  g_params, g_opt = apply_gradients(g_tx, state.params["generator"], state.opt_state["g"], g_grads)

  state = state.replace(
      step=state.step + 1,
      params={**state.params, "generator": g_params, "discriminator": d_params},
      batch_stats={**bs, "generator": g_bs, "discriminator": d_bs},
      opt_state={**state.opt_state, "g": g_opt, "d": d_opt})
  metrics = {"d_loss": d_loss, "g_loss": g_loss,
             "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
             "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
             "d_grad_norm": optax.tree.norm(d_grads),
             "g_grad_norm": optax.tree.norm(g_grads)}
  return state, metrics
