"""A trained model from Python: `aegan_jax.load(workdir)`, without reading the dataset.

  import aegan_jax
  model = aegan_jax.load("runs/default")
  images = model.sample(16, seed=0)                   # numpy [16, 28, 28, 1] in [0, 1]

The networks are rebuilt from the run's saved configuration and data spec (`spec.json`, the
example shape and value range the trainer wrote), and the newest checkpoint is restored
(verified against its checksums); a workdir written before `spec.json` existed falls back to
loading the dataset once.
Samples use the generator's EMA weights where the run kept them, as the trainer's grids do.
"""

import dataclasses
import json
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from aegan_jax import config as config_lib
from aegan_jax import data as data_lib
from aegan_jax import strategies
from aegan_jax.checkpoint import Checkpointer
from aegan_jax.errors import UserError
from aegan_jax.models import apply_model

SPEC_FILE = "spec.json"
_CHUNK = 10_000  # samples per generator call: bounded memory for any n


def write_spec(workdir: str, spec: data_lib.Spec) -> None:
  with open(os.path.join(workdir, SPEC_FILE), "w") as f:
    json.dump(dataclasses.asdict(spec), f)


def _read_spec(workdir: str, config: config_lib.Config) -> data_lib.Spec:
  path = os.path.join(workdir, SPEC_FILE)
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    return data_lib.Spec(**{**saved, "shape": tuple(saved["shape"])})
  return data_lib.load(config.dataset, config.data_dir).spec  # an older workdir


class Model:
  """A trained generator (and autoencoder, where the strategy has one), in eval mode."""

  def __init__(self, workdir: str, step: Optional[int] = None):
    workdir = os.path.abspath(workdir)
    ckpt = Checkpointer(workdir, keep=10**6)
    latest = ckpt.latest_step() if os.path.isdir(ckpt.directory) else None
    if latest is None:
      raise UserError(f"{workdir} holds no checkpoints; train first with: "
                      f"python -m experiments.train --workdir={workdir}")
    self.workdir = workdir
    self.config = config_lib.Config.from_dict(ckpt.saved_config(latest))
    self.spec = _read_spec(workdir, self.config)
    self.strategy = strategies.build(self.config, self.spec)
    abstract = jax.eval_shape(self.strategy.init, jax.random.key(self.config.seed))
    self.step = latest if step is None else step
    self.state = ckpt.restore(self.step, abstract)  # verified; a corrupt one is refused, kept
    nets = self.strategy.nets
    params = self.state.extras.get("ema_generator", self.state.params["generator"])
    stats = self.state.batch_stats["generator"]
    self._generate = jax.jit(lambda z, noise: apply_model(nets.generator, params, stats, z, noise,
                                                          train=False)[0])
    self._latents = jax.jit(nets.latents, static_argnums=1)
    self._latent_shape = jax.eval_shape(lambda k: nets.latents(k, 1)[0],
                                        jax.random.key(0)).shape[1:]
    self._reconstruct = (jax.jit(self.strategy.reconstruct) if self.strategy.has_autoencoder
                         else None)

  @property
  def image_shape(self) -> tuple[int, ...]:
    return self.spec.shape

  def latents(self, n: int, seed: int = 0) -> np.ndarray:
    """n noise vectors z as the generator draws them (N(0, I) or U[-1, 1]; with a code mixture,
    a last column in [0, 1) picks each vector's component)."""
    z, _ = self._latents(jax.random.key(seed), int(n))
    return np.asarray(z)

  def sample(self, n: Optional[int] = None, seed: int = 0,
             z: Optional[np.ndarray] = None) -> np.ndarray:
    """Generated examples as numpy [n, *image_shape]: n of them from noise drawn with `seed`, or
    one per row of `z` (from `latents`). Images are in [0, 1], 2-D points in data units."""
    if z is None:
      if n is None or n < 1:
        raise UserError(f"sample(n) needs a positive number of samples or z=..., got n={n}")
      z = self.latents(n, seed)
    z = jnp.asarray(z, jnp.float32)
    want = self._latent_shape
    if z.ndim != 2 or z.shape[1:] != want:
      raise UserError(f"z has shape {tuple(z.shape)}; this model's noise is [n, {want[0]}] "
                      f"(draw it with model.latents(n))")
    noise = self.strategy.nets.decoder_noise(jax.random.fold_in(jax.random.key(seed), 1),
                                             z.shape[0])
    out = [self._generate(z[i:i + _CHUNK], None if noise is None else noise[i:i + _CHUNK])
           for i in range(0, z.shape[0], _CHUNK)]
    return np.concatenate([np.asarray(o) for o in out])

  def interpolate(self, z0: np.ndarray, z1: np.ndarray, num: int = 8) -> np.ndarray:
    """num examples along the straight line from noise z0 to z1 (both [latent], ends included);
    with a code mixture the component column moves too, so the path may change component."""
    t = np.linspace(0.0, 1.0, num, dtype=np.float32)[:, None]
    return self.sample(z=(1.0 - t) * np.asarray(z0, np.float32)[None]
                       + t * np.asarray(z1, np.float32)[None])

  def reconstruct(self, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """x (numpy [n, *image_shape], in the data's range) through the autoencoder."""
    if self._reconstruct is None:
      raise UserError(f"--strategy={self.config.strategy} has no autoencoder to reconstruct "
                      f"with; use a strategy that has one (ae_pretrain, mdgan, vaegan, aae, ...)")
    x = jnp.asarray(x, jnp.float32)
    if x.shape[1:] != tuple(self.image_shape):
      raise UserError(f"x has shape {tuple(x.shape)}; this model reconstructs "
                      f"[n, {', '.join(map(str, self.image_shape))}]")
    return np.asarray(self._reconstruct(self.state, x, jax.random.key(seed)))


def load(workdir: str, step: Optional[int] = None) -> Model:
  """The model of a workdir's newest (or `step`'s) checkpoint."""
  return Model(workdir, step)
