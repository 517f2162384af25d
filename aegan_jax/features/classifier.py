"""A small LeNet-style classifier per dataset: domain features for FID/KID/PR and digit labels.

InceptionV3 features are ImageNet features; on 28x28 grey digits a classifier trained on the
dataset itself gives features that see what matters there (the "domain FID" of many GAN
papers). This module holds the network (`LeNet`, whose penultimate layer is the feature
vector), its training (`train_classifier`), its storage (`save`/`load`: orbax params plus a
meta.json under `default_dir`), the loaded `Classifier` with batched, jitted `features` and
`logits`, and `classify_channels`, the Stacked MNIST mode label 100 a + 10 b + c.

The network has no BatchNorm and no dropout, so a loaded classifier is one pure function
of its params: the same images give the same features in every process.
"""

import dataclasses
import functools
import json
import os
import shutil
import tempfile
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from aegan_jax import parallel
from aegan_jax.errors import UserError

# aegan_jax.data is imported inside the functions that use it: the data package imports the
# mode-counting metrics, which may import this module (classify_channels), and a top-level
# import either way round would be circular.

FEATURE_DIM = 128
ARCH = "lenet"
DEFAULT_BATCH_SIZE = 128
# Default training length: DEFAULT_EPOCHS passes over the data, within [MIN_STEPS, MAX_STEPS].
# Measured with scripts/train_classifier.py, seed 0, on 2 busy CPU cores: mnist5k 1055 steps
# (augmented) -> 98.8% of its 500 test digits in 95 s (seeds 2 and 4: 99.0%, 98.6%; with
# 15 epochs and shifts alone seeds ranged over 97.4-99.0%); fashion_mnist 2000 steps (not
# augmented) -> 91.5% of its 10,000 test images in 3 min.
DEFAULT_EPOCHS, MIN_STEPS, MAX_STEPS = 30, 500, 2000
LEARNING_RATE = 3e-3   # peak of the cosine decay; 1e-3 fell short of 98% on mnist5k in 500 steps
# Augmentation (runs of more than AUGMENT_AFTER_EPOCHS epochs, see default_augment): random
# rotations up to 0.2 rad (11 degrees), scalings up to +-10%, shifts up to 2 pixels.
MAX_ROTATION, MAX_SCALE, MAX_SHIFT = 0.2, 0.1, 2.0
AUGMENT_AFTER_EPOCHS = 10
CHUNK = 1000           # images per jitted forward pass in Classifier.features/logits
PROGRESS_FRACTION = 0.1  # train_classifier reports progress every tenth of its steps
_PARAMS_DIR, _META_FILE = "params", "meta.json"

Params = Any


class LeNet(nn.Module):
  """Conv 32 3x3 - maxpool 2 - Conv 64 3x3 - maxpool 2 - Dense 128 (the features) - Dense C.

  NHWC inputs as float in [0, 1], any number of channels; `__call__` returns
  (features [N, 128], logits [N, num_classes]). One conv per stage (convs_per_stage=1):
  two per stage cost 2.7x the CPU time per step, and on mnist5k two narrower ones (16, 32)
  were no more accurate.
  """
  num_classes: int = 10
  widths: tuple[int, ...] = (32, 64)
  convs_per_stage: int = 1
  feature_dim: int = FEATURE_DIM

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    # Centre the [0, 1] pixels so the first layer starts near zero mean; a constant shift,
    # not a data statistic, so the network stays the same function of its params.
    x = x.astype(jnp.float32) * 2.0 - 1.0
    for width in self.widths:
      for _ in range(self.convs_per_stage):
        # VALID: a quarter less compute than SAME, and the digits never touch the border.
        x = nn.relu(nn.Conv(width, (3, 3), padding="VALID")(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    features = nn.relu(nn.Dense(self.feature_dim, name="features")(x))
    logits = nn.Dense(self.num_classes, name="logits")(features)
    return features, logits


# --- training ----------------------------------------------------------------------------------

def warp(images: jax.Array, angle: jax.Array, scale: jax.Array, shift: jax.Array) -> jax.Array:
  """Each image rotated by angle[i] (radians) and scaled by scale[i] about its centre, then
  translated by shift[i] = (dy, dx) pixels; bilinear, zero outside (the background of these
  datasets is 0, so a moved digit looks like a digit written a little differently).

  Sampling is a gather over the flattened pixels: XLA on CPU runs it in about a millisecond
  for a batch, where a per-image dynamic_slice (an integer shift) lowers to a slow gather.
  """
  n, h, w, c = images.shape
  yy, xx = jnp.meshgrid(jnp.arange(h) - (h - 1) / 2, jnp.arange(w) - (w - 1) / 2, indexing="ij")
  # Inverse map: output pixel (y, x) reads input point R(-angle) (y - dy, x - dx) / scale.
  cos = (jnp.cos(angle) / scale)[:, None, None]
  sin = (jnp.sin(angle) / scale)[:, None, None]
  ty, tx = yy - shift[:, 0, None, None], xx - shift[:, 1, None, None]
  sy = cos * ty + sin * tx + (h - 1) / 2
  sx = -sin * ty + cos * tx + (w - 1) / 2
  y0, x0 = jnp.floor(sy), jnp.floor(sx)
  fy, fx = (sy - y0)[..., None], (sx - x0)[..., None]
  flat = images.reshape(n, h * w, c)

  def tap(yi, xi):
    inside = ((yi >= 0) & (yi < h) & (xi >= 0) & (xi < w))[..., None]
    idx = (jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)).astype(jnp.int32)
    return jnp.take_along_axis(flat, idx.reshape(n, h * w, 1), axis=1).reshape(n, h, w, c) * inside

  return ((1 - fy) * ((1 - fx) * tap(y0, x0) + fx * tap(y0, x0 + 1))
          + fy * ((1 - fx) * tap(y0 + 1, x0) + fx * tap(y0 + 1, x0 + 1)))


def augment(key: jax.Array, images: jax.Array) -> jax.Array:
  """Random small affine moves: rotations up to MAX_ROTATION, scalings up to 1 +- MAX_SCALE,
  shifts up to MAX_SHIFT pixels, drawn uniformly and independently per image."""
  n = images.shape[0]
  k_angle, k_scale, k_shift = jax.random.split(key, 3)
  angle = jax.random.uniform(k_angle, (n,), minval=-MAX_ROTATION, maxval=MAX_ROTATION)
  scale = 1.0 + jax.random.uniform(k_scale, (n,), minval=-MAX_SCALE, maxval=MAX_SCALE)
  shift = jax.random.uniform(k_shift, (n, 2), minval=-MAX_SHIFT, maxval=MAX_SHIFT)
  return warp(images, angle, scale, shift)


def make_train_step(module: LeNet, tx: optax.GradientTransformation, batch_size: int,
                    augmented: bool = True):
  """A pure step (state, data, perm, aug_key) -> (state, loss), state = {params, opt_state,
  step}, perm the epoch's permutation of the data (pipeline.epoch_permutation).

  The dataset is an argument rather than a closure so that it is not baked into the compiled
  program as a constant (60,000 images would be); only the state is donated.
  """
  from aegan_jax.data import pipeline

  def loss_fn(params, images, labels):
    _, logits = module.apply({"params": params}, images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  def step(state, data, perm, aug_key):
    batch = pipeline.batch_from_permutation(data, perm, state["step"], batch_size)
    images = batch["image"]
    if augmented:
      images = augment(jax.random.fold_in(aug_key, state["step"]), images)
    loss, grads = jax.value_and_grad(loss_fn)(state["params"], images, batch["label"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "opt_state": opt_state, "step": state["step"] + 1}, loss

  return jax.jit(step, donate_argnums=(0,))


def default_steps(num_train: int, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
  """DEFAULT_EPOCHS passes over the data, at least MIN_STEPS and at most MAX_STEPS."""
  return int(min(MAX_STEPS, max(MIN_STEPS, -(-DEFAULT_EPOCHS * num_train // batch_size))))


def default_augment(steps: int, batch_size: int, num_train: int) -> bool:
  """Augmentation only for runs of many epochs (small datasets such as mnist5k).

  Over many passes overfitting limits test accuracy and augmentation helps (mnist5k, 1055
  steps, seed 0: 96.8% unaugmented, 98.8% augmented); in a run of a few epochs underfitting
  does, and it costs accuracy (fashion_mnist, 1500 steps of an earlier SAME-padded LeNet:
  91.8% unaugmented, 90.7% with 2-pixel shifts).
  """
  return steps * batch_size > AUGMENT_AFTER_EPOCHS * num_train


def train_classifier(dataset: str, data_dir: str = "", steps: int | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0,
                     augmented: bool | None = None,
                     progress=None) -> tuple[Params, dict[str, Any]]:
  """Trains LeNet with Adam on `dataset`'s train split; returns (params, meta).

  steps None: `default_steps`; augmented None: `default_augment`. meta holds
  test_accuracy, measured on the held-out test split, and what `load` needs to rebuild the
  network (num_classes, image_shape). progress(step, steps, loss) is called about every
  PROGRESS_FRACTION of the run (and at its end), for a progress line.
  """
  from aegan_jax import data as data_lib
  from aegan_jax.data import pipeline

  if steps is not None and steps < 1:
    raise UserError(f"--steps={steps} must be at least 1 (or left out for the default)")
  if batch_size < 1:
    raise UserError(f"batch_size={batch_size} must be at least 1")
  ds = data_lib.load(dataset, data_dir)
  if len(ds.image_shape) != 3:
    raise UserError(f"dataset {dataset!r} holds examples of shape {ds.image_shape}, not images; "
                    f"the classifier is for image datasets (e.g. --dataset=mnist5k)")
  data_lib.check_batch_size(ds, batch_size)
  steps = default_steps(ds.num_train, batch_size) if steps is None else steps
  if augmented is None:
    augmented = default_augment(steps, batch_size, ds.num_train)
  num_classes = int(max(np.max(np.asarray(ds.train["label"])), np.max(ds.test_labels))) + 1
  module = LeNet(num_classes=num_classes)

  init_key, data_key, aug_key = jax.random.split(jax.random.key(seed), 3)
  params = module.init(init_key, jnp.zeros((1, *ds.image_shape), jnp.float32))["params"]
  # Cosine decay to zero: the last steps average out the minibatch noise, which is worth a
  # few tenths of a percent of test accuracy at no cost.
  tx = optax.adam(optax.cosine_decay_schedule(LEARNING_RATE, steps))
  state = {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}
  train_step = make_train_step(module, tx, batch_size, augmented)
  permutation = jax.jit(pipeline.epoch_permutation, static_argnums=2)
  per_epoch = pipeline.steps_per_epoch(ds.num_train, batch_size)
  report_every = max(1, int(steps * PROGRESS_FRACTION))
  for step in range(steps):
    if step % per_epoch == 0:  # a sort of N keys: once an epoch, not once a step
      perm = permutation(data_key, step // per_epoch, ds.num_train)
    state, loss = train_step(state, ds.train, perm, aug_key)
    if progress and ((step + 1) % report_every == 0 or step + 1 == steps):
      progress(step + 1, steps, float(loss))
  loss.block_until_ready()

  params = state["params"]
  meta = {"dataset": dataset, "num_train": ds.num_train, "steps": steps,
          "feature_dim": module.feature_dim, "arch": ARCH, "split": "test",
          "num_classes": num_classes, "image_shape": list(ds.image_shape),
          "batch_size": batch_size, "seed": seed, "learning_rate": LEARNING_RATE,
          "augmented": bool(augmented)}
  classifier = Classifier(module, params, meta)
  predicted = classifier.logits(pipeline.to_float(ds.test_images)).argmax(axis=1)
  meta["test_accuracy"] = float(np.mean(predicted == np.asarray(ds.test_labels)))
  meta["num_test"] = int(len(ds.test_labels))
  return params, meta


# --- the loaded classifier -----------------------------------------------------------------------

@functools.partial(jax.jit, static_argnums=0)
def _apply(module: LeNet, params: Params, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  return module.apply({"params": params}, images)


@dataclasses.dataclass(frozen=True)
class Classifier:
  """A trained LeNet: module, params and the meta.json it was saved with."""
  module: LeNet
  params: Params
  meta: dict[str, Any]

  def features(self, images) -> np.ndarray:
    """Penultimate-layer features [N, 128] of float images in [0, 1], NHWC."""
    return self._batched(images, 0)

  def logits(self, images) -> np.ndarray:
    """Class logits [N, num_classes] of float images in [0, 1], NHWC."""
    return self._batched(images, 1)

  def _batched(self, images, which: int) -> np.ndarray:
    # Host arrays stay on the host and go to the device one chunk at a time: a large sample
    # set need not fit in accelerator memory as float32 at once.
    from aegan_jax.data import pipeline
    images = images if isinstance(images, jax.Array) else np.asarray(images)
    expected = tuple(self.meta.get("image_shape", images.shape[1:]))
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
      raise UserError(f"the {self.meta.get('dataset')!r} classifier takes images of shape "
                      f"[N, {', '.join(map(str, expected))}], got {tuple(images.shape)}")
    n = images.shape[0]
    size = min(CHUNK, n)
    out = []
    for start in range(0, n, size):
      chunk = pipeline.to_float(jnp.asarray(images[start:start + size]))
      # The last chunk is padded to the chunk size: one compiled program for every chunk.
      pad = size - chunk.shape[0]
      if pad:
        chunk = jnp.concatenate([chunk, jnp.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
      out.append(np.asarray(_apply(self.module, self.params, chunk)[which])[:size - pad])
    if not out:
      width = self.module.feature_dim if which == 0 else self.module.num_classes
      return np.zeros((0, width), np.float32)
    return np.concatenate(out)


def classify_channels(classifier: Classifier, images) -> np.ndarray:
  """Stacked MNIST modes: labels [N] = 100 a + 10 b + c, a/b/c the digits of channels 0/1/2.

  Each channel is classified as a grey digit by a 1-channel classifier (mnist or mnist5k).
  images: float in [0, 1] (or uint8), numpy or jax.
  """
  xp = jnp if isinstance(images, jax.Array) else np  # host arrays stay on the host
  images = xp.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise UserError(f"classify_channels takes RGB images [N, H, W, 3], got {tuple(images.shape)}")
  n = images.shape[0]
  # [N, H, W, 3] -> [3N, H, W, 1] channel-major, one classifier pass for all three digits.
  grey = xp.moveaxis(images, -1, 0).reshape(3 * n, *images.shape[1:3], 1)
  digits = classifier.logits(grey).argmax(axis=1).reshape(3, n)
  return (100 * digits[0] + 10 * digits[1] + digits[2]).astype(np.int32)


# --- storage ---------------------------------------------------------------------------------------

def default_dir(dataset: str, data_dir: str = "") -> str:
  """<TFDS data dir>/aegan_jax/classifiers/<dataset>: a classifier lives beside its data."""
  from aegan_jax.data import tfds_source
  return os.path.join(tfds_source.resolve_data_dir(data_dir), "aegan_jax", "classifiers", dataset)


def has_saved(directory: str) -> bool:
  """Whether `directory` holds anything (a classifier, or the remains of one) save would replace."""
  directory = os.path.abspath(os.path.expanduser(directory))
  return os.path.isdir(directory) and bool(os.listdir(directory))


def is_complete(directory: str) -> bool:
  """Whether `directory` holds a whole saved classifier (its meta.json is written last)."""
  return os.path.isfile(os.path.join(os.path.abspath(os.path.expanduser(directory)), _META_FILE))


def save(directory: str, params: Params, meta: dict[str, Any], force: bool = False) -> None:
  """Writes params (orbax) and meta.json to `directory`; an existing one only with force.

  Written under a temporary name beside `directory`, then renamed into place: a reader never
  sees half a classifier, and of two processes saving at once (two runs that both found no
  classifier) one wins and the other's copy is discarded (`FileExistsError` without force).
  """
  directory = os.path.abspath(os.path.expanduser(directory))
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise UserError(f"{directory} is a file, not a directory; move it aside or choose another "
                    f"directory for the classifier")
  if has_saved(directory) and not force:
    raise UserError(f"{directory} already holds a classifier; pass --force to overwrite it")
  parent = os.path.dirname(directory)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.tmp-", dir=parent)
  try:
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.join(tmp, _PARAMS_DIR), params)
    checkpointer.wait_until_finished()
    checkpointer.close()
    # meta.json last: its presence marks a complete classifier.
    with open(os.path.join(tmp, _META_FILE), "w") as f:
      json.dump(meta, f, indent=2, sort_keys=True)
    if force and os.path.isdir(directory):
      old = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.old-", dir=parent)
      os.rename(directory, os.path.join(old, "classifier"))
      shutil.rmtree(old)
    try:  # replaces an empty directory, never a full one
      os.rename(tmp, directory)
    except OSError:  # another process renamed its classifier into place first
      if not is_complete(directory):
        raise
      raise FileExistsError(directory) from None
  finally:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp)


def ensure(dataset: str, data_dir: str = "", steps: int | None = None,
           log=print) -> Classifier:
  """The classifier saved for `dataset`, trained and saved first if there is none.

  So evaluation works from a project's first run: a missing classifier costs one training
  (`steps` None: `default_steps`) with progress lines and its held-out accuracy sent to `log`.
  If another process saves one meanwhile, theirs is kept and loaded.
  """
  directory = default_dir(dataset, data_dir)
  if not is_complete(directory):
    start = time.time()
    log(f"No {dataset} classifier for the image metrics yet: training one (once; cached in "
        f"{directory}).")

    def progress(step, total, loss):
      log(f"  classifier {step}/{total} steps, loss {loss:.3f}, {time.time() - start:.0f} s")

    params, meta = train_classifier(dataset, data_dir, steps=steps, progress=progress)
    meta["train_seconds"] = round(time.time() - start, 1)
    try:  # the remains of a killed save of the old, in-place kind are replaced
      save(directory, params, meta, force=has_saved(directory) and not is_complete(directory))
    except (FileExistsError, UserError):
      log(f"Another process saved a {dataset} classifier meanwhile; using that one.")
    else:
      log(f"Classifier trained in {meta['train_seconds']:.0f} s: held-out accuracy "
          f"{100 * meta['test_accuracy']:.2f}% on {meta['num_test']} test images.")
  return load(dataset, data_dir)


def load(dataset: str, data_dir: str = "", directory: str | None = None) -> Classifier:
  """The classifier saved for `dataset` (in `directory`, default `default_dir`)."""
  directory = os.path.abspath(os.path.expanduser(directory or default_dir(dataset, data_dir)))
  meta_path = os.path.join(directory, _META_FILE)
  if not os.path.isfile(meta_path):
    command = f"python -m scripts.train_classifier --dataset={dataset}"
    if data_dir:
      command += f" --data_dir={data_dir}"
    raise UserError(f"no classifier for {dataset!r} in {directory}; train it with: {command}")
  with open(meta_path) as f:
    meta = json.load(f)
  retrain = f"python -m scripts.train_classifier --dataset={dataset}" + (
      f" --data_dir={data_dir}" if data_dir else "") + " --force"
  if meta.get("arch") != ARCH:
    raise UserError(f"{directory} holds a classifier of architecture {meta.get('arch')!r}, not "
                    f"{ARCH!r}; retrain it with: {retrain}")
  module = LeNet(num_classes=int(meta["num_classes"]), feature_dim=int(meta["feature_dim"]))
  abstract = jax.eval_shape(lambda: module.init(
      jax.random.key(0), jnp.zeros((1, *meta["image_shape"]), jnp.float32))["params"])
  # Replicated on every device: in a multi-process run orbax needs the target's sharding.
  abstract = parallel.DataParallel.create().abstract(abstract)
  checkpointer = ocp.StandardCheckpointer()
  try:
    params = checkpointer.restore(os.path.join(directory, _PARAMS_DIR), abstract)
  except Exception as e:  # noqa: BLE001 - any failure to read means an unusable classifier
    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise UserError(f"the classifier in {directory} cannot be read ({reason}); retrain it "
                    f"with: {retrain}") from None
  finally:
    checkpointer.close()
  return Classifier(module, params, meta)
