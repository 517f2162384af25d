"""What a strategy is: an initial state, phases of pure steps, and a sampler.

The trainer runs the phases in order, each for its number of steps, jit-compiling each
phase's step once. A phase may have a `begin` hook: a host-side transition run once when the
phase starts (e.g. ae_pretrain builds the generator from the pretrained autoencoder there).
Hooks must be deterministic, because a resumed run replays them.
"""

import dataclasses
import math
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from aegan_jax.adversarial import Adversary, ema_update
from aegan_jax.errors import UserError
from aegan_jax.losses import ADVERSARIAL
from aegan_jax.models import ARCHS, apply_model, init_model, mlp
from aegan_jax.models.composite import AutoencoderDiscriminator, JointDiscriminator
from aegan_jax.models.generator import Generator
from aegan_jax.state import TrainState, adam, apply_gradients, generator_optimizer
from aegan_jax.steps import Networks, historical_extras, pack_examples

StepFn = Callable[[TrainState, dict], tuple[TrainState, dict]]

# Every technique flag (config fields marked technique=True); a strategy module lists the ones
# it honours in TECHNIQUES, and strategies.build refuses the others.
D_TECHNIQUES = frozenset({"gp_weight", "r1_weight", "spectral_norm", "n_critic",
                          "label_smoothing", "ema_decay"})
GAN_TECHNIQUES = D_TECHNIQUES | {"feature_matching", "encoder_feature_weight",
                                 "minibatch_discrimination", "historical_weight",
                                 "decoder_noise_dim", "pack", "update"}


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
  # (state, x, key) -> the autoencoder's reconstruction of x in data space; None: no autoencoder.
  reconstruct: Optional[Callable[[TrainState, jax.Array, jax.Array], jax.Array]] = None
  ema_decay: float = 0.0   # > 0: extras['ema_generator'] is kept and sampled from

  def __post_init__(self):
    # The generator's EMA is part of every adversarial step (after the step's own ending), so
    # a step called outside the trainer, in a test or a notebook, keeps it as training does.
    if self.ema_decay:
      object.__setattr__(self, "phases", tuple(
          dataclasses.replace(p, step=_with_ema(p.step, self.ema_decay)) if p.adversarial
          else p for p in self.phases))

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
    """n samples from the generator (its EMA weights when kept; running BatchNorm statistics)."""
    z, noise = self.nets.latents(key, n)
    params = state.extras.get("ema_generator", state.params["generator"])
    images, _ = apply_model(self.nets.generator, params, state.batch_stats["generator"], z, noise,
                            train=False)
    return images

  @property
  def has_autoencoder(self) -> bool:
    return self.reconstruct is not None


def _with_ema(step: StepFn, decay: float) -> StepFn:
  def step_with_ema(state: TrainState, batch):
    state, metrics = step(state, batch)
    return state.replace(extras={**state.extras, "ema_generator": ema_update(
        state.extras["ema_generator"], state.params["generator"], decay)}), metrics
  return step_with_ema


def decoder_reconstruct(nets: Networks):
  """Dec(E(x)[, z]) with the 'encoder' and 'decoder' networks (ae_pretrain)."""
  def reconstruct(state, x, key):
    h, _ = apply_model(nets.encoder, state.params["encoder"], state.batch_stats["encoder"],
                       x, train=False)
    logits, _ = apply_model(nets.decoder, state.params["decoder"], state.batch_stats["decoder"],
                            h, nets.decoder_noise(key, x.shape[0]), train=False)
    return nets.output(logits)
  return reconstruct


def generator_reconstruct(nets: Networks, code=lambda e: e):
  """G(code(E(x))): strategies whose generator is the decoder of an encoder into z-space.
  `code` picks z from the encoder's output (VAE-GAN: the posterior mean)."""
  def reconstruct(state, x, key):
    e, _ = apply_model(nets.encoder, state.params["encoder"], state.batch_stats["encoder"],
                       x, nets.encoder_noise(key, x.shape[0]), train=False)
    out, _ = apply_model(nets.generator, state.params["generator"],
                         state.batch_stats["generator"], code(e), None, train=False)
    return out
  return reconstruct


def make_networks(config, spec, *, discriminator: nn.Module, decoder_code_dim=None,
                  encoder_code_dim=None, decoder: bool = False, encoder_noise_dim: int = 0,
                  components: int = 1, latent_dist: str = "normal") -> Networks:
  """Every strategy's networks: the generator out(Dec(...)) of the arch, the given
  discriminator, the noise law of the config, and optionally an encoder.

  decoder_code_dim: the generator maps z into a code of that size first (ae_pretrain; None:
  z feeds the decoder). encoder_code_dim: an encoder into that many numbers (None: none).
  decoder: the autoencoder's decoder is a network of its own, apart from the generator.
  latent_dist: the law of z in the strategy's paper, used unless --latent_dist names one.
  """
  arch = ARCHS.get(config.arch)
  arch.check_shape(spec.shape)
  dec = arch.decoder(config, spec.shape)
  return Networks(
      generator=Generator(dec, decoder_code_dim, spec.unit_range, components,
                          jnp.dtype(config.dtype)),
      discriminator=discriminator,
      latent_dim=config.latent_dim,
      decoder_noise_dim=config.decoder_noise_dim,  # 0 unless the strategy honours the flag
      encoder=(None if encoder_code_dim is None else
               arch.encoder(config.replace(code_dim=encoder_code_dim), spec.shape)),
      decoder=dec if decoder else None,
      mixture_components=components,
      latent_dist=latent_dist if config.latent_dist == "auto" else config.latent_dist,
      encoder_noise_dim=encoder_noise_dim)


def build_networks(config, spec, *, autoencoder: bool) -> Networks:
  """The arch's modules for data `spec` (a data.Spec); with `autoencoder`, the generator
  decodes codes of size code_dim."""
  arch = ARCHS.get(config.arch)
  return make_networks(
      config, spec, discriminator=arch.discriminator(config, spec.shape),
      decoder_code_dim=config.code_dim if autoencoder else None,
      encoder_code_dim=config.code_dim if autoencoder else None, decoder=autoencoder,
      components=config.code_components if autoencoder else 1)


def encoder_networks(config, spec, code_dim: int) -> Networks:
  """G(z) = out(Dec(z)), D, and an encoder into a code of `code_dim` numbers (the noise space
  or, for VAE-GAN, the posterior's mean and log-variance)."""
  return make_networks(config, spec,
                       discriminator=ARCHS.get(config.arch).discriminator(config, spec.shape),
                       encoder_code_dim=code_dim)


def autoencoder_networks(config, spec, latent_dist: str = "normal") -> Networks:
  """G(z) = out(Dec(z)) on z of latent_dim, and an autoencoder D = Dec_D(Enc_D(x)) through a
  code of code_dim, returning (reconstruction in data space, code): ebgan's and began's.

  D's bottleneck must be narrower than the data: with code_dim >= the data's dimension the
  autoencoder can learn the identity, which reconstructs everything, fakes included, and
  so tells G nothing (Zhao et al. 2016, section 2.3.1).
  """
  data_dim = math.prod(spec.shape)
  if config.code_dim >= data_dim:
    raise UserError(f"--strategy={config.strategy}'s discriminator is an autoencoder; its "
                    f"bottleneck --code_dim={config.code_dim} is not smaller than the data's "
                    f"{data_dim} dimensions, so it can learn the identity and tell real from "
                    f"fake by nothing: use --code_dim={max(data_dim // 2, 1)} or less")
  arch = ARCHS.get(config.arch)
  d = AutoencoderDiscriminator(arch.encoder(config, spec.shape),
                               arch.decoder(config, spec.shape), spec.unit_range)
  return make_networks(config, spec, discriminator=d, latent_dist=latent_dist)


def discriminator_reconstruct(nets: Networks):
  """x through D's autoencoder, in data space, with D's running BatchNorm statistics."""
  def reconstruct(state, x, key):
    (recon, _), _ = apply_model(nets.discriminator, state.params["discriminator"],
                                state.batch_stats["discriminator"], x, train=False)
    return recon
  return reconstruct


def energies(nets: Networks, d_params, d_bs, real, fake, energy_fn):
  """(real energies, fake energies, D's new batch stats) through D's autoencoder. Real and
  fake go through D separately, so BatchNorm (dcgan's decoder) never mixes them; the running
  statistics are the real batch's."""
  (real_recon, _), new_bs = apply_model(nets.discriminator, d_params, d_bs, real, train=True)
  (fake_recon, _), _ = apply_model(nets.discriminator, d_params, d_bs, fake, train=True)
  return energy_fn(real, real_recon), energy_fn(fake, fake_recon), new_bs


def energy_d_update(nets: Networks, d_tx, state: TrainState, x, fake, energy_fn, d_loss_fn):
  """D's Adam step on d_loss_fn(real energies, fake energies) (ebgan, began); returns
  (new D params, D opt state, D batch stats, D's loss, real energies, fake energies)."""
  def objective(dp):
    real_e, fake_e, d_bs = energies(nets, dp, state.batch_stats["discriminator"], x, fake,
                                    energy_fn)
    return d_loss_fn(real_e, fake_e), (d_bs, real_e, fake_e)

  (d_loss, (d_bs, real_e, fake_e)), d_grads = jax.value_and_grad(
      objective, has_aux=True)(state.params["discriminator"])
  d_params, d_opt = apply_gradients(d_tx, state.params["discriminator"], state.opt_state["d"],
                                    d_grads)
  return d_params, d_opt, d_bs, d_loss, real_e, fake_e


def joint_networks(config, spec, *, stochastic_encoder: bool) -> Networks:
  """G(z), an encoder x -> z-space (the 'encoder' role), and a joint D(x, z) (bigan, veegan).

  For --arch=mlp D's head reads [flattened x, z] directly, as the ALI and VEEGAN code do on
  vectors. For a conv arch, x first goes through the arch's encoder body to as many features
  as the head's widest layer, so x reaches the head through no narrower a bottleneck than the
  head itself has. `stochastic_encoder`: E(x, eps) with eps of latent_dim numbers (ALI).
  """
  head = mlp.discriminator(config)  # an mlp for every arch
  x_net = (None if config.arch == "mlp" else
           ARCHS.get(config.arch).encoder(config.replace(code_dim=max(head.hidden)), spec.shape))
  return make_networks(config, spec, discriminator=JointDiscriminator(head, x_net),
                       encoder_code_dim=config.latent_dim,
                       encoder_noise_dim=config.latent_dim if stochastic_encoder else 0)


def joint_game(config, spec, *, stochastic_encoder: bool):
  """(networks, G/E optimizer, D optimizer, the game) of a joint (x, z) game (bigan, veegan)."""
  return (joint_networks(config, spec, stochastic_encoder=stochastic_encoder),
          generator_optimizer(config), adam(config.d_lr, config), Adversary.from_config(config))


def played_discriminator(config, state: TrainState, d_params, d_bs):
  """The D that G (and E) play against: D before this step's update with
  --update=simultaneous (both players move from the same point), the updated D otherwise."""
  if config.update == "simultaneous":
    return state.params["discriminator"], state.batch_stats["discriminator"]
  return d_params, d_bs


def joint_step_end(state: TrainState, gen_enc: dict, g_opt, g_bs, e_bs, d_params, d_opt,
                   d_bs) -> TrainState:
  """The next state of a joint game: G and E (one optimizer, 'g') and D ('d') updated."""
  return state.advanced(
      params={**gen_enc, "discriminator": d_params},
      batch_stats={"generator": g_bs, "encoder": e_bs, "discriminator": d_bs},
      opt_state={"g": g_opt, "d": d_opt})


def joint_strategy(nets: Networks, config, spec, g_tx, d_tx, step: StepFn) -> Strategy:
  """One adversarial phase of `step`, sampling G, reconstructing x as G(E(x))."""
  return Strategy(nets=nets, init=adversarial_init(nets, config, spec, g_tx, d_tx, pair_input),
                  phases=(Phase("gan", config.steps, step),),
                  reconstruct=generator_reconstruct(nets), ema_decay=config.ema_decay)


def pair_input(x, z):
  """The joint discriminator's input: the (x, z) pair (init_networks' d_input)."""
  return (x, z)


def packed_input(m: int) -> Callable:
  """d_input for init_networks when D sees packs of m examples (--pack)."""
  return lambda x, z: pack_examples(jnp.concatenate([x] * m), m)


def init_networks(nets: Networks, key: jax.Array, image_shape,
                  d_input: Callable = lambda x, z: x) -> tuple[dict, dict]:
  """Random params and batch stats for every network of `nets`, keyed by role.

  `d_input(x, z)` is what the discriminator sees, from an example batch x and a noise batch
  z: x by default, the code z for aae's latent D, the pair (x, z) for a joint D.
  """
  keys = dict(zip(["generator", "discriminator", "encoder", "decoder"], jax.random.split(key, 4)))
  x = jnp.zeros((2, *image_shape), jnp.float32)
  z, noise = nets.latents(jax.random.key(0), 2)
  params, batch_stats = {}, {}
  params["generator"], batch_stats["generator"] = init_model(nets.generator, keys["generator"],
                                                             z, noise)
  params["discriminator"], batch_stats["discriminator"] = init_model(
      nets.discriminator, keys["discriminator"], d_input(x, z))
  if nets.encoder is not None:
    params["encoder"], batch_stats["encoder"] = init_model(
        nets.encoder, keys["encoder"], x, nets.encoder_noise(jax.random.key(0), 2))
  if nets.decoder is not None:  # a decoder apart from the generator (ae_pretrain)
    h = jnp.zeros((2, nets.generator.code_dim), jnp.float32)
    params["decoder"], batch_stats["decoder"] = init_model(nets.decoder, keys["decoder"], h, noise)
  return params, batch_stats


def adversarial_init(nets: Networks, config, spec, g_tx, d_tx,
                     d_input: Callable = lambda x, z: x, extras=None):
  """root key -> fresh state for a two-optimizer game: D under 'd', and under 'g' the
  generator, or the generator and encoder together when the strategy has one (mdgan, vaegan,
  bigan, veegan train E with G's objective)."""
  def init(key):
    params, batch_stats = init_networks(nets, jax.random.fold_in(key, 1), spec.shape, d_input)
    g_params = ({"generator": params["generator"], "encoder": params["encoder"]}
                if nets.encoder is not None else params["generator"])
    opt_state = {"g": g_tx.init(g_params), "d": d_tx.init(params["discriminator"])}
    return new_state(key, params, batch_stats, opt_state, extras, config=config)
  return init


def new_state(key: jax.Array, params, batch_stats, opt_state, extras=None, *,
              config=None) -> TrainState:
  """A step-0 state; with `config`, also the running averages that --ema_decay and
  --historical_weight keep (they start at the initial weights)."""
  extras = dict(extras or {})
  if config is not None and config.ema_decay:
    extras["ema_generator"] = jax.tree.map(jnp.copy, params["generator"])
  if config is not None and config.historical_weight:
    extras["historical"] = historical_extras(params)
  return TrainState(step=jnp.zeros((), jnp.int32), rng=jax.random.key_data(key), params=params,
                    batch_stats=batch_stats, opt_state=opt_state, extras=extras)


def restart_averages(state: TrainState) -> TrainState:
  """Restarts the EMA and historical averages at the current weights (after a transition
  that replaced the generator, e.g. ae_pretrain's decoder copy)."""
  extras = dict(state.extras)
  if "ema_generator" in extras:
    extras["ema_generator"] = jax.tree.map(jnp.copy, state.params["generator"])
  if "historical" in extras:
    extras["historical"] = historical_extras(state.params)
  return state.replace(extras=extras)


def _non_default_fields(config, key: str) -> dict[str, Any]:
  """{field: metadata[key]} for the config's fields carrying `key` whose value is not the
  default."""
  return {f.name: f.metadata[key] for f in dataclasses.fields(config)
          if key in f.metadata and getattr(config, f.name) != f.default}


def check_options(config, name: str, techniques: frozenset, supporters: dict) -> None:
  """Refuses, in one line, a technique or strategy hyperparameter this strategy cannot use.

  `supporters`: technique -> the strategies that accept it (for the error's suggestion).
  """
  for field, _ in _non_default_fields(config, "technique").items():
    if field not in techniques:
      users = ", ".join(sorted(supporters.get(field, ()))) or "none"
      raise UserError(f"--{field} does not apply to --strategy={name} (it applies to: {users}); "
                      f"drop the flag or pick one of those strategies")
  for field, owner in _non_default_fields(config, "strategy").items():
    if owner != name:
      raise UserError(f"--{field} is a hyperparameter of --strategy={owner}, not {name}; "
                      f"drop it")
  loss = ADVERSARIAL.get(config.loss)
  if loss.needs_lipschitz and not (config.gp_weight or config.spectral_norm):
    raise UserError(f"--loss={config.loss} needs a Lipschitz critic, which nothing enforces "
                    f"here: add --gp_weight=10 (WGAN-GP) or --spectral_norm")
  if config.label_smoothing and not loss.logistic:
    raise UserError(f"--label_smoothing smooths the targets of a logistic D; --loss="
                    f"{config.loss} has none: use --loss=non_saturating or minimax, or drop it")
