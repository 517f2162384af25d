"""The run's settings: one frozen dataclass, the absl flags generated from it, and validation.

Every field is a flag of the same name (`--batch_size=128`), so the entry points, presets
(flagfiles) and the checkpoint's record of the configuration can never drift apart. A new
field here is a new flag everywhere. A strategy's own hyperparameters are declared in its
module (`HYPERPARAMETERS`, aegan_jax/hyperparameters.py) and become fields of the same Config.
"""

import dataclasses
import functools
import json
import math
import os
from typing import Any

from aegan_jax import hyperparameters, strategies
from aegan_jax.errors import UserError


def _field(default, help_text: str, **meta):
  return dataclasses.field(default=default, metadata={"help": help_text, **meta})


class Config:
  """Everything that decides what a run computes (plus a few run-control knobs). A frozen
  dataclass; each strategy's own hyperparameters are added below the class (they are declared
  in the strategy's module, aegan_jax/hyperparameters.py)."""

  # What to train.
  dataset: str = _field("mnist5k", "Dataset name (see aegan_jax.data).")
  data_dir: str = _field("", "TFDS data directory; empty = $TFDS_DATA_DIR or ~/tensorflow_datasets.")
  strategy: str = _field(
      "ae_pretrain", "Training strategy: ae_pretrain (pretrained autoencoder -> generator), gan, "
      "mdgan (Che et al.'s regularized GAN, geometric + mode regularizers; not their two-step "
      "MDGAN), vaegan, aae, ebgan, began, bigan (ALI/BiGAN), veegan or ragan (relativistic "
      "average GAN); see "
      "aegan_jax/strategies.")
  arch: str = _field("mlp", "Network family: mlp or dcgan.")
  loss: str = _field("non_saturating", "Adversarial loss: minimax (the seed's equation), "
                     "non_saturating, lsgan, hinge or wgan (needs --gp_weight or --spectral_norm). "
                     "ebgan and began have their own energy losses and take only the default.")
  recon_loss: str = _field("mse", "Autoencoder reconstruction loss: mse or bce (Bernoulli).")

  # How long.
  steps: int = _field(10000, "Adversarial (GAN) steps; 0 = pretraining only (strategies that "
                      "pretrain: the autoencoder and its code prior as the generator).")
  pretrain_steps: int = _field(3000, "Autoencoder pretraining steps (strategies that pretrain).")
  batch_size: int = _field(64, "Global batch size.")

  # Networks.
  latent_dim: int = _field(64, "Dimension of the generator's noise z.")
  code_dim: int = _field(64, "Dimension of the autoencoder's code h.")
  decoder_noise_dim: int = _field(
      0, "Extra noise fed to the decoder beside the code, x' = Dec(h, z); 0 = off.",
      technique=True)
  code_mapping: str = _field(
      "learned",
      "How noise reaches the code space in ae_pretrain: 'gaussian' (a Gaussian fitted to the "
      "training codes, fixed) or 'learned' (the same affine map, then trained adversarially).")
  mlp_hidden: tuple[int, ...] = _field(
      (512, 512), "Hidden widths of the mlp networks (the seed's: 128), in the encoder's "
      "order; the decoder/generator mirrors them. Also the encoder's and discriminator's unless "
      "--e_hidden / --d_hidden say otherwise.")
  e_hidden: tuple[int, ...] = _field(
      (), "Hidden widths of the mlp encoder (empty = --mlp_hidden).")
  d_hidden: tuple[int, ...] = _field(
      (), "Hidden widths of the mlp discriminator (empty = --mlp_hidden).")
  g_activation: str = _field(
      "relu", "Hidden activation of the mlp generator/decoder and encoder: relu, tanh (the "
      "Unrolled GAN and GDPP code) or leaky_relu (slope 0.2).")
  d_activation: str = _field(
      "relu", "Hidden activation of the mlp discriminator: relu, tanh, leaky_relu, or maxout "
      "(--maxout_pieces linear pieces per unit; the PacGAN and ALI code: 5).")
  maxout_pieces: int = _field(5, "Linear pieces per unit of a maxout discriminator.")
  mlp_batchnorm: bool = _field(
      False, "BatchNorm before every hidden activation of the mlp generator/decoder and "
      "encoder, with no bias before it (the PacGAN and ALI code).")
  weight_init: str = _field(
      "default", "Weight initialization of the mlp networks: default (flax's LeCun normal), "
      "orthogonal (gain 1.4: the Unrolled GAN, GDPP and VEEGAN code) or normal (std 0.02: the "
      "PacGAN and ALI code). Biases start at 0.")
  latent_dist: str = _field(
      "auto", "Law of the generator's noise z: normal (N(0, I)), uniform (U[-1, 1]^d: DCGAN "
      "in the Stacked MNIST setups) or auto (the strategy's paper: uniform for began, normal "
      "for the others).")
  dcgan_channels: int = _field(64, "Base channel count of the dcgan networks.")
  conv_impl: str = _field(
      "auto", "How the dcgan networks' strided convolutions are computed: 'stock' (flax's "
      "layers), 'fast' (the same math posed as XLA:CPU's fast paths), 'auto' (fast on CPU, "
      "stock on GPU/TPU). The parameters and results do not depend on it.", run_control=True)
  dtype: str = _field(
      "float32", "Compute dtype of the networks: float32, or bfloat16 for mixed precision on "
      "GPU/TPU (parameters, optimizer states, batch statistics and losses stay float32).")

  # Optimization (optax Adam).
  g_lr: float = _field(1e-4, "Generator learning rate.")
  d_lr: float = _field(1e-4, "Discriminator learning rate.")
  ae_lr: float = _field(1e-3, "Autoencoder learning rate.")
  g_optimizer: str = _field(
      "adam", "The generator's optimizer: 'adam', or 'sgd' (plain gradient descent at --g_lr: "
      "a step in proportion to D's gradient, where Adam scales even an uninformative one to a "
      "full --g_lr step).")
  adam_b1: float = _field(0.5, "Adam beta1.")
  adam_b2: float = _field(0.999, "Adam beta2.")
  seed: int = _field(0, "Random seed; a run is a function of (config, seed).")

  # Discriminator regularizers and the improved techniques (Salimans et al. 2016). Each is
  # off at its default; a strategy that cannot use one refuses it (strategies/base.py).
  gp_weight: float = _field(0.0, "WGAN-GP gradient penalty weight on interpolates (paper: 10).",
                            technique=True)
  r1_weight: float = _field(0.0, "R1 penalty weight, gamma/2 E||grad D(x_real)||^2 "
                            "(Mescheder et al. 2018; typical 1-10).", technique=True)
  spectral_norm: bool = _field(False, "Spectral normalization of every discriminator layer.",
                               technique=True)
  n_critic: int = _field(1, "Discriminator updates per generator update (WGAN: 5). Every step "
                         "updates D; G is updated on every n_critic-th step.", technique=True)
  label_smoothing: float = _field(0.0, "One-sided label smoothing: real targets 1 - s "
                                  "(Salimans et al.: 0.1); logistic losses only.", technique=True)
  feature_matching: bool = _field(False, "Generator matches the mean of D's last hidden layer "
                                  "on real and fake batches instead of fooling D.",
                                  technique=True)
  encoder_feature_weight: float = _field(
      0.0, "Adds w * ||mean E(x) - mean E(G(z))||^2 to the generator loss, E the pretrained "
      "(frozen) encoder: feature matching in the autoencoder's code space.", technique=True)
  minibatch_discrimination: bool = _field(False, "Minibatch discrimination layer in D "
                                          "(100 kernels of size 5).", technique=True)
  historical_weight: float = _field(0.0, "Historical averaging: w * ||theta - mean of past "
                                    "theta||^2 on G and D.", technique=True)
  ema_decay: float = _field(0.0, "EMA of the generator's weights for sampling and evaluation "
                            "(e.g. 0.999); 0 = off.", technique=True)
  pack: int = _field(1, "PacGAN packing (Lin et al. 2018): D judges m samples at once, "
                     "concatenated, all real or all generated; each step then draws m x "
                     "--batch_size real and generated samples, so D's batch stays --batch_size. "
                     "1 = off.", technique=True)
  update: str = _field(
      "alternating", "How D and G move each step: alternating (D, then G against the updated "
      "D) or simultaneous (both gradients at the same point, from one forward pass, as the "
      "Unrolled GAN, GDPP, VEEGAN, ALI and PacGAN code train).", technique=True)

  # Run control: may change when a run is resumed.
  log_every: int = _field(200, "Log metrics every N steps.", run_control=True)
  sample_every: int = _field(2000, "Write a sample grid every N steps.", run_control=True)
  checkpoint_every: int = _field(2000, "Save a checkpoint every N steps.", run_control=True)
  keep_checkpoints: int = _field(3, "Checkpoints kept in the workdir.", run_control=True)
  grid_size: int = _field(10, "Sample grids are grid_size x grid_size images.", run_control=True)

  steps_per_call: int = _field(
      1, "Training steps per compiled call (a lax.scan over steps, unrolled on CPU): removes "
      "the per-step dispatch; the results are those of one step per call. Calls stop at log, "
      "checkpoint, sample, evaluation, phase and epoch boundaries. Compile time grows with it "
      "on CPU; 4-8 is plenty.", run_control=True)

  # Evaluation during training (run control too: it reads the model, never changes it).
  eval_every: int = _field(5000, "Evaluate every N adversarial steps (and at the end); 0 = off.",
                           run_control=True)
  eval_metrics: str = _field(
      "auto", "Comma-separated: fid,kid,is,pr,dc,modes; 'auto' = what fits the dataset and the "
      "feature networks at hand; '' = none.", run_control=True)
  eval_samples: int = _field(10000, "Generated samples for fid/kid/is/pr/dc (the 2-D mode "
                             "protocol always draws 2,500, Stacked MNIST 26,000).",
                             run_control=True)
  classifier_steps: int = _field(
      0, "Training steps of the domain classifier (image metrics' features), trained the "
      "first time a dataset is evaluated and cached beside the data; 0 = its default "
      "(30 epochs, within 500-2000 steps).", run_control=True)
  inception_weights: str = _field(
      "", "InceptionV3 weights (.npz from scripts.convert_inception_weights): image metrics "
      "then use Inception features instead of the domain classifier.", run_control=True)

  @property
  def samples_per_step(self) -> int:
    """Real examples drawn per step: --batch_size, times --pack (each packed D example holds
    pack samples)."""
    return self.batch_size * self.pack

  def to_dict(self) -> dict[str, Any]:
    return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in dataclasses.fields(self)}

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "Config":
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
    return cls(**kwargs)

  def replace(self, **kw) -> "Config":
    return dataclasses.replace(self, **kw)


# Each strategy's own flags, declared in its module (HYPERPARAMETERS), become fields here, owned
# by that strategy: strategies.check refuses them for the others, validate holds them to their
# bounds.
HYPERPARAMETERS = hyperparameters.declared(strategies.STRATEGIES)
for _name, (_owner, _hp) in HYPERPARAMETERS.items():
  Config.__annotations__[_name] = type(_hp.default)
  setattr(Config, _name, _hp.field(_owner))
Config = dataclasses.dataclass(frozen=True)(Config)


def run_control_fields() -> set[str]:
  return {f.name for f in dataclasses.fields(Config) if f.metadata.get("run_control")}


def incompatible_fields(saved: dict[str, Any], current: Config) -> list[str]:
  """Fields (outside run control) where a saved configuration differs from `current`."""
  now = current.to_dict()
  skip = run_control_fields() | {"data_dir", "steps"}
  defaults = Config().to_dict()  # a field added since the run was saved: fine at its default
  return sorted(k for k in now if k not in skip and saved.get(k, defaults[k]) != now[k])


INT32_MAX = 2**31 - 1


def validate(config: Config) -> Config:
  """Checks values that no registry lookup catches; raises UserError naming the fix."""
  positive_ints = ["steps_per_call", "batch_size", "latent_dim", "code_dim",
                   "dcgan_channels", "pack",
                   "maxout_pieces",
                   "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "grid_size",
                   "eval_samples"]
  for name in positive_ints:
    if getattr(config, name) <= 0:
      raise UserError(f"--{name} must be a positive integer, got {getattr(config, name)}")
  # --steps=0 is a strategy's pretraining alone (ae_pretrain: the autoencoder and its code
  # prior, no adversarial step); a strategy without pretraining refuses it when built.
  for name in ["steps", "pretrain_steps", "decoder_noise_dim", "eval_every",
               "classifier_steps"]:
    if getattr(config, name) < 0:
      raise UserError(f"--{name} must be >= 0, got {getattr(config, name)}")
  # Every count ends up in an int32 (the step counter, array shapes, PRNG folds).
  for f in dataclasses.fields(config):
    v = getattr(config, f.name)
    values = v if isinstance(v, tuple) else (v,)
    if any(isinstance(x, int) and not isinstance(x, bool) and x > INT32_MAX for x in values):
      raise UserError(f"--{f.name}={v} is past what the program can count (an int32 holds "
                      f"at most {INT32_MAX:,}); choose a smaller value")
  total = config.pretrain_steps + config.d_warmup_steps + config.steps
  if total > INT32_MAX:
    terms = " + ".join(["--pretrain_steps"] + ["--d_warmup_steps"] * bool(config.d_warmup_steps)
                       + ["--steps"])
    raise UserError(f"{terms} = {total:,} "
                    f"steps in all, past the int32 step counter ({INT32_MAX:,}); choose fewer")
  for name in ["g_lr", "d_lr", "ae_lr"]:
    v = getattr(config, name)
    if not (math.isfinite(v) and v > 0):
      raise UserError(f"--{name} must be a positive learning rate such as 2e-4, got {v}")
  for name in ["adam_b1", "adam_b2"]:
    v = getattr(config, name)
    if not 0 <= v < 1:
      raise UserError(f"--{name} must be in [0, 1), got {v}")
  if not config.mlp_hidden or any(w <= 0 for w in config.mlp_hidden):
    raise UserError(f"--mlp_hidden must be positive widths like 128 or 256,256, got "
                    f"{','.join(map(str, config.mlp_hidden))}")
  for name in ["e_hidden", "d_hidden"]:
    if any(w <= 0 for w in getattr(config, name)):
      raise UserError(f"--{name} must be positive widths like 128 or 256,256 (or empty), got "
                      f"{','.join(map(str, getattr(config, name)))}")
  choices = {"g_activation": ("relu", "tanh", "leaky_relu"),
             "d_activation": ("relu", "tanh", "leaky_relu", "maxout"),
             "weight_init": ("default", "orthogonal", "normal"),
             "latent_dist": ("auto", "normal", "uniform"),
             "g_optimizer": ("adam", "sgd"),
             "update": ("alternating", "simultaneous")}
  for name, allowed in choices.items():
    if getattr(config, name) not in allowed:
      raise UserError(f"unknown --{name} {getattr(config, name)!r}; choose "
                      f"{', '.join(allowed[:-1])} or {allowed[-1]}")
  if config.arch != "mlp":
    defaults = Config()
    mlp_only = [n for n in ["e_hidden", "d_hidden", "g_activation", "d_activation",
                            "mlp_batchnorm", "weight_init"]
                if getattr(config, n) != getattr(defaults, n)]
    if mlp_only:
      raise UserError(f"--{', --'.join(mlp_only)} shape(s) the mlp networks only; drop it with "
                      f"--arch={config.arch}, or use --arch=mlp")
  if config.code_mapping not in ("gaussian", "learned"):
    raise UserError(f"unknown --code_mapping {config.code_mapping!r}; choose gaussian or learned")
  for name, (_, hp) in HYPERPARAMETERS.items():  # each strategy's own, by their declared bounds
    hp.check(name, getattr(config, name))
  for name in ["gp_weight", "r1_weight", "encoder_feature_weight", "historical_weight"]:
    v = getattr(config, name)
    if not (math.isfinite(v) and v >= 0):
      raise UserError(f"--{name} must be a finite number >= 0, got {v}")
  if config.n_critic < 1:
    raise UserError(f"--n_critic must be a positive integer, got {config.n_critic}")
  if not 0 <= config.label_smoothing < 1:
    raise UserError(f"--label_smoothing must be in [0, 1) (0.1 is usual), got "
                    f"{config.label_smoothing}")
  if not 0 <= config.ema_decay < 1:
    raise UserError(f"--ema_decay must be in [0, 1) (0 = off, 0.999 is usual), got "
                    f"{config.ema_decay}")
  if config.recon_loss not in ("mse", "bce"):
    raise UserError(f"unknown --recon_loss {config.recon_loss!r}; choose mse or bce")
  if config.dtype not in ("float32", "bfloat16"):
    raise UserError(f"unknown --dtype {config.dtype!r}; choose float32 or bfloat16")
  if config.conv_impl not in ("auto", "stock", "fast"):
    raise UserError(f"unknown --conv_impl {config.conv_impl!r}; choose auto, stock or fast")
  return config


# ----------------------------------------------------------------------------- absl flags


def flag_groups() -> list[tuple[str, list[str]]]:
  """The fields in the groups the Config source's comments draw ('# What to train.', ...), in
  source order: the one place a flag's group is written is beside the flag."""
  import inspect
  import re
  names = {f.name for f in dataclasses.fields(Config)}
  groups: list[tuple[str, list[str]]] = []
  for line in inspect.getsource(Config).splitlines():
    comment = re.match(r"^  # (.*)$", line)
    field = re.match(r"^  (\w+): ", line)
    if comment and (not groups or groups[-1][1]):  # a group's first comment line is its title
      title = re.split(r"[(:;]", comment.group(1))[0].strip().rstrip(".")
      groups.append((title, []))
    elif field and field.group(1) in names and groups:
      groups[-1][1].append(field.group(1))
  owners: dict[str, list[str]] = {}  # each strategy's own flags, declared in its module
  for name, (owner, _) in HYPERPARAMETERS.items():
    owners.setdefault(owner, []).append(name)
  groups += [(f"--strategy={owner}'s own hyperparameters", names)
             for owner, names in owners.items()]
  return [g for g in groups if g[1]]


def define_flags(flags_module=None) -> None:
  """Defines one absl flag per Config field (call once, at import of an entry point)."""
  from absl import flags
  flags_module = flags_module or flags
  for f in dataclasses.fields(Config):
    help_text = f.metadata["help"]
    if f.type in (int, "int"):
      flags_module.DEFINE_integer(f.name, f.default, help_text)
    elif f.type in (float, "float"):
      flags_module.DEFINE_float(f.name, f.default, help_text)
    elif f.type in (str, "str"):
      flags_module.DEFINE_string(f.name, f.default, help_text)
    elif f.type in (bool, "bool"):
      flags_module.DEFINE_boolean(f.name, f.default, help_text)
    else:  # tuple[int, ...]
      flags_module.DEFINE_list(f.name, [str(v) for v in f.default], help_text)


def from_flags(flag_values=None) -> Config:
  """Builds a Config from parsed absl flags."""
  from absl import flags
  fv = flag_values or flags.FLAGS
  kwargs = {}
  for f in dataclasses.fields(Config):
    v = fv[f.name].value
    if isinstance(v, list):
      try:
        v = tuple(int(x) for x in v)
      except ValueError:
        raise UserError(f"--{f.name} must be comma-separated integers, got {','.join(v)}") from None
    kwargs[f.name] = v
  return Config(**kwargs)


def from_flagfile(path: str, **overrides) -> Config:
  """The validated Config a flagfile (a preset) gives, with `overrides` on top; parsed into
  flags of its own, so the process's absl flags are left alone."""
  import types
  from absl import flags
  if not os.path.isfile(path):
    raise UserError(f"no flagfile at {path}; presets are under experiments/presets/")
  fv = flags.FlagValues()
  define_flags(types.SimpleNamespace(**{
      name: functools.partial(getattr(flags, name), flag_values=fv)
      for name in ("DEFINE_integer", "DEFINE_float", "DEFINE_string", "DEFINE_boolean",
                   "DEFINE_list")}))
  fv(["preset", f"--flagfile={path}"])
  return validate(from_flags(fv).replace(**overrides))


def to_flagfile(config: Config, workdir: str) -> str:
  """The configuration as a flagfile that reproduces the run."""
  lines = [f"--workdir={workdir}"]
  for k, v in config.to_dict().items():
    if isinstance(v, list):
      v = ",".join(map(str, v))
    lines.append(f"--{k}={v}")
  return "\n".join(lines) + "\n"


def dumps(config: Config) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True)


