"""The two update steps every strategy is built from, as pure functions.

`ae_step` trains encoder + decoder on the reconstruction objective; `gan_step` does one
discriminator update (adversarial.update_discriminator), then one generator update against the
updated discriminator, with the generator-side techniques of Salimans et al. Both take
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

from aegan_jax.adversarial import Adversary, running_mean, squared_distance, update_discriminator
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
  mixture_components: int = 1   # > 1: z carries a last uniform column that picks a component
  latent_dist: str = "normal"   # z ~ N(0, I), or 'uniform': U[-1, 1]^latent_dim
  encoder_noise_dim: int = 0    # > 0: a stochastic encoder E(x, eps), eps ~ N(0, I) (ALI)

  def output(self, logits: jax.Array) -> jax.Array:
    """The decoder's outputs in data space: sigmoid for images, identity for real data."""
    return jax.nn.sigmoid(logits) if self.generator.unit_range else logits

  def decoder_noise(self, key: jax.Array, n: int) -> Optional[jax.Array]:
    """The seed's second decoder input z in x' = Dec(h, z); None when switched off."""
    if not self.decoder_noise_dim:
      return None
    return jax.random.normal(key, (n, self.decoder_noise_dim))

  def encoder_noise(self, key: jax.Array, n: int) -> Optional[jax.Array]:
    """eps of a stochastic encoder E(x, eps); None for a deterministic one."""
    if not self.encoder_noise_dim:
      return None
    return jax.random.normal(key, (n, self.encoder_noise_dim))

  def latents(self, key: jax.Array, n: int) -> tuple[jax.Array, Optional[jax.Array]]:
    kz, kn, ku = jax.random.split(key, 3)
    if self.latent_dist == "uniform":
      z = jax.random.uniform(kz, (n, self.latent_dim), minval=-1.0, maxval=1.0)
    else:
      z = jax.random.normal(kz, (n, self.latent_dim))
    if self.mixture_components > 1:
      z = jnp.concatenate([z, jax.random.uniform(ku, (n, 1))], axis=-1)
    return z, self.decoder_noise(kn, n)


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
  state = state.advanced(
      params=ae_params,
      batch_stats={"encoder": e_bs, "decoder": d_bs},
      opt_state={"ae": opt})
  metrics = {"recon_loss": loss,
             "recon_mse": jnp.mean(jnp.square(nets.output(logits) - x)),
             "ae_grad_norm": optax.tree.norm(grads)}
  return state, metrics


@dataclasses.dataclass(frozen=True)
class GeneratorTechniques:
  """The generator-side techniques of gan_step (see config.py for each flag)."""
  n_critic: int = 1
  feature_matching: bool = False
  encoder_feature_weight: float = 0.0
  historical_weight: float = 0.0
  pack: int = 1
  simultaneous: bool = False

  @classmethod
  def from_config(cls, config) -> "GeneratorTechniques":
    return cls(config.n_critic, config.feature_matching, config.encoder_feature_weight,
               config.historical_weight, config.pack, config.update == "simultaneous")


def pack_examples(x: jax.Array, m: int) -> jax.Array:
  """PacGAN's packing: [m B, ...] -> [B, ..., m C], each group of m consecutive examples
  joined along the last axis (features of vectors, channels of images). m = 1: x itself."""
  if m == 1:
    return x
  x = x.reshape(x.shape[0] // m, m, *x.shape[1:])
  x = jnp.moveaxis(x, 1, -2)
  return x.reshape(*x.shape[:-2], m * x.shape[-1])


def update_every(n_critic: int, step: jax.Array, update, old):
  """update(None) on every n_critic-th step, else `old` (lax.cond: the skipped branch costs
  nothing). `update` returns what `old` holds, e.g. (params, opt_state, grad_norm)."""
  if n_critic == 1:
    return update(None)
  return jax.lax.cond((step + 1) % n_critic == 0, update, lambda _: old, None)


def pullback_update(tx: optax.GradientTransformation, params, opt_state, pullback, cotangent,
                    n_critic: int, step: jax.Array):
  """Applies the gradient that `pullback` (from jax.vjp of the networks' forward pass) gives
  for `cotangent`, on every n_critic-th step; returns (params, opt_state, grad_norm)."""
  def update(_):
    (grads,) = pullback(cotangent)
    new_params, new_opt = apply_gradients(tx, params, opt_state, grads)
    return new_params, new_opt, optax.tree.norm(grads)
  return update_every(n_critic, step, update, (params, opt_state, jnp.zeros(())))


def historical_extras(params) -> dict:
  """The extras that historical averaging needs: the running means of G and D, and a count."""
  copy = lambda tree: jax.tree.map(jnp.copy, tree)
  return {"generator": copy(params["generator"]),
          "discriminator": copy(params["discriminator"]), "count": jnp.ones((), jnp.float32)}


def gan_step(nets: Networks, g_tx: optax.GradientTransformation,
             d_tx: optax.GradientTransformation, adv: Adversary, tech: GeneratorTechniques,
             state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
  """One D update on real and fake examples, then one G update against the new D.

  The generator runs forward once: jax.vjp keeps its pullback, the D update uses the fakes,
  and the G gradient is the updated D's gradient at those same fakes pulled back through G.
  That is the same math as a second forward pass with the same z (BatchNorm in train mode is
  a deterministic function of the batch), at two thirds of the generator's cost.
  With n_critic > 1, G is updated only on every n_critic-th step (lax.cond: the skipped
  branch costs nothing).

  `tech.simultaneous`: G's gradient is taken against D as it was before this step's update,
  so both players move from the same point (the papers' `sess.run([g_op, d_op])`). D's
  forward pass on the fakes is then the same computation in both gradients, and XLA computes
  it once. `tech.pack` = m: the batch holds m x B examples and D sees B packs of m (PacGAN).
  """
  real = batch["image"]
  n = real.shape[0]
  key_z, key_d = jax.random.split(state.step_key())
  z, noise = nets.latents(key_z, n)
  bs = state.batch_stats
  hist = state.extras.get("historical")
  pack = lambda v: pack_examples(v, tech.pack)

  def generate(gp):
    return apply_model(nets.generator, gp, bs["generator"], z, noise, train=True)

  fake, g_pullback, g_bs = jax.vjp(generate, state.params["generator"], has_aux=True)

  extra_d = None
  if tech.historical_weight:
    extra_d = lambda dp: tech.historical_weight * squared_distance(dp, hist["discriminator"])
  d_params, d_opt, d_bs, metrics = update_discriminator(adv, nets.discriminator, d_tx, state,
                                                        pack(real), pack(fake), key_d,
                                                        extra_loss=extra_d)
  # The D that G plays against.
  g_d_params, g_d_bs = ((state.params["discriminator"], bs["discriminator"])
                        if tech.simultaneous else (d_params, d_bs))

  def d_features(x):
    (_, feats), _ = apply_model(nets.discriminator, g_d_params, g_d_bs, pack(x), train=True,
                                with_features=True)
    return jnp.mean(feats, axis=0)

  def g_objective(x):
    if tech.feature_matching:  # Salimans et al.: ||E f(x) - E f(G(z))||^2, f = D's last layer
      loss = jnp.sum(jnp.square(d_features(real) - d_features(x)))
    else:
      logits, _ = apply_model(nets.discriminator, g_d_params, g_d_bs, pack(x), train=True)
      loss = adv.g_loss(logits)
    if tech.encoder_feature_weight:  # the same, in the pretrained (frozen) encoder's codes
      encode = lambda v: jnp.mean(apply_model(nets.encoder, state.params["encoder"],
                                              bs["encoder"], v, train=False)[0], axis=0)
      loss += tech.encoder_feature_weight * jnp.sum(jnp.square(encode(real) - encode(x)))
    return loss

  g_loss, fake_grad = jax.value_and_grad(g_objective)(fake)
  old_g, old_opt = state.params["generator"], state.opt_state["g"]

  def update_g(_):
    (g_grads,) = g_pullback(fake_grad)
    if tech.historical_weight:  # the gradient of w ||theta - mean theta||^2
      g_grads = jax.tree.map(lambda g, p, h: g + 2 * tech.historical_weight * (p - h),
                             g_grads, old_g, hist["generator"])
    new_g, new_opt = apply_gradients(g_tx, old_g, old_opt, g_grads)
    return new_g, new_opt, optax.tree.norm(g_grads)

  g_params, g_opt, g_norm = update_every(tech.n_critic, state.step, update_g,
                                         (old_g, old_opt, jnp.zeros(())))

  extras = state.extras
  if tech.historical_weight:
    count = hist["count"] + 1
    extras = {**extras, "historical": {
        "generator": running_mean(hist["generator"], g_params, count),
        "discriminator": running_mean(hist["discriminator"], d_params, count), "count": count}}
  state = state.advanced(
      params={"generator": g_params, "discriminator": d_params},
      batch_stats={"generator": g_bs, "discriminator": d_bs},
      opt_state={"g": g_opt, "d": d_opt},
      extras=extras)
  return state, {**metrics, "g_loss": g_loss, "g_grad_norm": g_norm}
