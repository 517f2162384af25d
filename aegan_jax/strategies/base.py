"""What a strategy is: an initial state, phases of pure steps, and a sampler.

The trainer runs the phases in order, each for its number of steps, jit-compiling each
phase's step once. A phase may have a `begin` hook: a host-side transition run once when the
phase starts (e.g. ae_pretrain builds the generator from the pretrained autoencoder there).
Hooks must be deterministic, because a resumed run replays them.
"""

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from aegan_jax.models import ARCHS, apply_model, init_model
from aegan_jax.models.generator import Generator
from aegan_jax.state import TrainState
from aegan_jax.steps import Networks

StepFn = Callable[[TrainState, dict], tuple[TrainState, dict]]


@dataclasses.dataclass(frozen=True)
class Phase:
  name: str
  num_steps: int
  step: StepFn                       # pure; the trainer jits it with the state donated
  adversarial: bool = True           # sample grids are written during adversarial phases
  begin: Optional[Callable[[TrainState, Any], TrainState]] = None  # (state, dataset) -> state


@dataclasses.dataclass(frozen=True)
class Strategy:
  nets: Networks
  init: Callable[[jax.Array], TrainState]   # root key -> fresh state
  phases: tuple[Phase, ...]

  @property
  def total_steps(self) -> int:
    return sum(p.num_steps for p in self.phases)

  def phase_at(self, step: int) -> Phase:
    """The phase that step index `step` (0-based) belongs to."""
    start = 0
    for phase in self.phases:
      if step < start + phase.num_steps:
        return phase
      start += phase.num_steps
    return self.phases[-1]

  def phase_start(self, phase: Phase) -> int:
    start = 0
    for p in self.phases:
      if p is phase:
        return start
      start += p.num_steps
    raise ValueError(phase.name)

  def generate(self, state: TrainState, key: jax.Array, n: int) -> jax.Array:
    """n images from the generator (running BatchNorm statistics), values in [0, 1]."""
    z, noise = self.nets.latents(key, n)
    images, _ = apply_model(self.nets.generator, state.params["generator"],
                            state.batch_stats["generator"], z, noise, train=False)
    return images

  def reconstruct(self, state: TrainState, x: jax.Array, key: jax.Array) -> jax.Array:
    """Dec(E(x)[, z]) in data space, eval mode; only for strategies with an autoencoder."""
    nets = self.nets
    h, _ = apply_model(nets.encoder, state.params["encoder"], state.batch_stats["encoder"],
                       x, train=False)
    logits, _ = apply_model(nets.decoder, state.params["decoder"], state.batch_stats["decoder"],
                            h, nets.decoder_noise(key, x.shape[0]), train=False)
    return nets.output(logits)

  @property
  def has_autoencoder(self) -> bool:
    return self.nets.encoder is not None


def build_networks(config, spec, *, autoencoder: bool) -> Networks:
  """The arch's modules for data `spec` (a data.Spec); with `autoencoder`, the generator
  decodes codes of size code_dim."""
  arch = ARCHS.get(config.arch)
  image_shape = spec.shape
  arch.check_shape(image_shape)
  decoder = arch.decoder(config, image_shape)
  return Networks(
      generator=Generator(decoder, config.code_dim if autoencoder else None, spec.unit_range),
      discriminator=arch.discriminator(config, image_shape),
      latent_dim=config.latent_dim,
      decoder_noise_dim=config.decoder_noise_dim,
      encoder=arch.encoder(config, image_shape) if autoencoder else None,
      decoder=decoder if autoencoder else None,
  )


def init_networks(nets: Networks, key: jax.Array, image_shape) -> tuple[dict, dict]:
  """Random params and batch stats for every network of `nets`, keyed by role."""
  keys = dict(zip(["generator", "discriminator", "encoder", "decoder"], jax.random.split(key, 4)))
  x = jnp.zeros((2, *image_shape), jnp.float32)
  z, noise = nets.latents(jax.random.key(0), 2)
  params, batch_stats = {}, {}
  params["generator"], batch_stats["generator"] = init_model(nets.generator, keys["generator"],
                                                             z, noise)
  params["discriminator"], batch_stats["discriminator"] = init_model(
      nets.discriminator, keys["discriminator"], x)
  if nets.encoder is not None:
    params["encoder"], batch_stats["encoder"] = init_model(nets.encoder, keys["encoder"], x)
    h = jnp.zeros((2, nets.generator.code_dim), jnp.float32)
    params["decoder"], batch_stats["decoder"] = init_model(nets.decoder, keys["decoder"], h, noise)
  return params, batch_stats


def new_state(key: jax.Array, params, batch_stats, opt_state, extras=None) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), rng=jax.random.key_data(key), params=params,
                    batch_stats=batch_stats, opt_state=opt_state, extras=extras or {})
