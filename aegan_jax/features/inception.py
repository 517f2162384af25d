"""InceptionV3 of the reference FID code, in Flax, and a pickle-free loader for its weights.

The network is pytorch-fid's `fid_inception_v3()`: torchvision's Inception3 without the aux
classifier, 1008 classes, and the block variants of TF's 2015-12-05 inception graph
(FIDInceptionA/C/E_1 average-pool without counting the padding, FIDInceptionE_2 max-pools in
its pool branch). Flax module and submodule names are the PyTorch ones, so a state_dict name
maps to a variable path mechanically: `Mixed_5b.branch1x1.conv.weight` is
params/Mixed_5b/branch1x1/conv/kernel (OIHW -> HWIO), `...bn.running_mean` is
batch_stats/.../bn/mean, `fc.weight` is params/fc/kernel (transposed).

No package ships these weights; the user converts pytorch-fid's .pth once with
`python -m scripts.convert_inception_weights` and passes the .npz. The loader never unpickles:
weights files are data, and a pickle can run arbitrary code.
"""

import functools
import os
import zipfile
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aegan_jax.errors import UserError

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
BN_EPSILON = 1e-3

CONVERT_HINT = ("convert the pytorch-fid weights with: python -m scripts.convert_inception_weights"
                " --src=pt_inception-2015-12-05-6726825d.pth --out=inception_fid.npz")

Variables = dict[str, Any]
IntPair = int | tuple[int, int]


def _pair(v: IntPair) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nn.Module):
  """torchvision's BasicConv2d: conv (no bias) -> BatchNorm(eps 1e-3, stored statistics) -> relu."""
  features: int
  kernel_size: IntPair
  strides: int = 1
  padding: IntPair = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ph, pw = _pair(self.padding)
    x = nn.Conv(self.features, _pair(self.kernel_size), strides=(self.strides, self.strides),
                padding=((ph, ph), (pw, pw)), use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  # TF's average pool, which the FID graph uses, leaves padded zeros out of the mean
  # (pytorch-fid's count_include_pad=False patch).
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
  """FIDInceptionA (Mixed_5b/c/d)."""
  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = BasicConv2d(64, 1, name="branch1x1")(x)
    b5 = BasicConv2d(48, 1, name="branch5x5_1")(x)
    b5 = BasicConv2d(64, 5, padding=2, name="branch5x5_2")(b5)
    b3 = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
    b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(b3)
    b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_3")(b3)
    bp = BasicConv2d(self.pool_features, 1, name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """torchvision's InceptionB (Mixed_6a): the 35x35 -> 17x17 reduction."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = BasicConv2d(384, 3, strides=2, name="branch3x3")(x)
    bd = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = BasicConv2d(96, 3, strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  """FIDInceptionC (Mixed_6b/c/d/e)."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    b1 = BasicConv2d(192, 1, name="branch1x1")(x)
    b7 = BasicConv2d(c7, 1, name="branch7x7_1")(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv2d(c7, 1, name="branch7x7dbl_1")(x)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv2d(192, 1, name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """torchvision's InceptionD (Mixed_7a): the 17x17 -> 8x8 reduction."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = BasicConv2d(192, 1, name="branch3x3_1")(x)
    b3 = BasicConv2d(320, 3, strides=2, name="branch3x3_2")(b3)
    b7 = BasicConv2d(192, 1, name="branch7x7x3_1")(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv2d(192, 3, strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """FIDInceptionE_1 (Mixed_7b, max_pool=False) and FIDInceptionE_2 (Mixed_7c, max_pool=True)."""
  # The FID graph max-pools in Mixed_7c's pool branch (an oddity of that graph, kept because
  # the reference statistics were computed with it).
  max_pool: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = BasicConv2d(320, 1, name="branch1x1")(x)
    b3 = BasicConv2d(384, 1, name="branch3x3_1")(x)
    b3 = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
    bd = BasicConv2d(448, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(384, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
    pooled = _max_pool_3x3(x) if self.max_pool else _avg_pool_3x3(x)
    bp = BasicConv2d(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


def preprocess(images: jax.Array) -> jax.Array:
  """[N, H, W, 1 or 3] floats in [0, 1] -> [N, 299, 299, 3] in [-1, 1], as pytorch-fid feeds it.

  Bilinear without antialiasing is what torch's F.interpolate(align_corners=False) computes
  (half-pixel centres, two taps even when shrinking), so features match pytorch-fid's.
  """
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise UserError(f"Inception features need images shaped [N, H, W, 1 or 3], got {images.shape};"
                    " pass a batch of NHWC grayscale or RGB images")
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise UserError(f"Inception features need float images in [0, 1], got dtype {images.dtype};"
                    " convert them first (e.g. uint8 / 255)")
  x = images.astype(jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)  # the net was trained on RGB; gray is R = G = B
  x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, 3), method="bilinear",
                       antialias=False)
  return 2.0 * x - 1.0


class InceptionV3(nn.Module):
  """pytorch-fid's FID InceptionV3 in inference mode (NHWC).

  `__call__(images)` -> pool3 features [N, 2048]; with `return_logits=True` ->
  (features, logits [N, 1008]) for the Inception Score. Dropout before fc is left out: it is
  the identity at inference.
  """

  @nn.compact
  def __call__(self, images: jax.Array,
               return_logits: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
    x = preprocess(images)
    x = BasicConv2d(32, 3, strides=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv2d(32, 3, name="Conv2d_2a_3x3")(x)
    x = BasicConv2d(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = BasicConv2d(80, 1, name="Conv2d_3b_1x1")(x)
    x = BasicConv2d(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(max_pool=False, name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    features = jnp.mean(x, axis=(1, 2))
    # fc is always built (so init creates it whatever the flag); when only features are
    # returned, XLA drops the matmul.
    logits = nn.Dense(NUM_CLASSES, name="fc")(features)
    return (features, logits) if return_logits else features


# --- PyTorch state_dict <-> Flax variables --------------------------------------------------------

# (torch submodule, torch leaf) -> (Flax collection, Flax leaf, axes taking a torch tensor to Flax).
_TORCH_TO_FLAX = {
    ("conv", "weight"): ("params", "kernel", (2, 3, 1, 0)),  # OIHW -> HWIO
    ("bn", "weight"): ("params", "scale", None),
    ("bn", "bias"): ("params", "bias", None),
    ("bn", "running_mean"): ("batch_stats", "mean", None),
    ("bn", "running_var"): ("batch_stats", "var", None),
    ("fc", "weight"): ("params", "kernel", (1, 0)),  # [out, in] -> [in, out]
    ("fc", "bias"): ("params", "bias", None),
}
# The inverse: (Flax collection, Flax submodule, Flax leaf) -> (torch leaf, axes back to torch).
_FLAX_TO_TORCH = {
    (coll, sub, leaf): (tleaf, None if axes is None else tuple(int(a) for a in np.argsort(axes)))
    for (sub, tleaf), (coll, leaf, axes) in _TORCH_TO_FLAX.items()}
# Buffers PyTorch saves that inference does not use; tolerated in files, never required.
_IGNORED_SUFFIXES = (".num_batches_tracked",)


def _why(e: Exception) -> str:
  """An exception as a short fragment for a one-line message."""
  text = " ".join(str(e).split())
  return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


def _tensors(n: int) -> str:
  return f"{n} tensor" if n == 1 else f"{n} tensors"


def _flat(tree: Mapping[str, Any],
          prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
  out = []
  for k, v in tree.items():
    out.extend(_flat(v, prefix + (k,)) if isinstance(v, Mapping) else [(prefix + (k,), v)])
  return out


def _torch_name(collection: str, path: tuple[str, ...]) -> tuple[str, tuple[int, ...] | None]:
  """Flax variable (collection, path) -> (state_dict name, axes taking Flax layout to torch)."""
  tleaf, axes = _FLAX_TO_TORCH[(collection, path[-2], path[-1])]
  return ".".join(path[:-1] + (tleaf,)), axes


@functools.cache
def _abstract_variables() -> Variables:
  images = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return jax.eval_shape(lambda x: InceptionV3().init(jax.random.key(0), x), images)


def state_dict_names_and_shapes() -> dict[str, tuple[int, ...]]:
  """The PyTorch state_dict names and shapes (pytorch-fid's layout) the loader expects.

  Derived from the Flax module, so it is what `load_weights` checks a file against.
  """
  out = {}
  for coll in ("params", "batch_stats"):
    for path, leaf in _flat(_abstract_variables()[coll]):
      name, axes = _torch_name(coll, path)
      out[name] = tuple(leaf.shape) if axes is None else tuple(leaf.shape[a] for a in axes)
  return dict(sorted(out.items()))


def variables_to_state_dict(variables: Variables) -> dict[str, np.ndarray]:
  """Flax variables -> PyTorch state_dict names and layouts (float32 numpy)."""
  out = {}
  for coll in ("params", "batch_stats"):
    for path, leaf in _flat(variables[coll]):
      name, axes = _torch_name(coll, path)
      a = np.asarray(leaf, np.float32)
      out[name] = a if axes is None else np.transpose(a, axes)
  return dict(sorted(out.items()))


def state_dict_to_variables(state_dict: Mapping[str, Any], source: str) -> Variables:
  """Checks a state_dict of pytorch-fid's FID Inception and lays it out as Flax variables.

  `source` names where the tensors came from (e.g. "--inception_weights FILE") in the one-line
  UserError raised for missing or unexpected tensors, wrong shapes or non-float data.
  """
  expected = state_dict_names_and_shapes()
  given = {k: v for k, v in state_dict.items() if not k.endswith(_IGNORED_SUFFIXES)}
  missing = [k for k in expected if k not in given]
  if missing:
    raise UserError(f"{source} lacks {_tensors(len(missing))} (first: {missing[0]});"
                    f" {CONVERT_HINT}")
  unexpected = sorted(k for k in given if k not in expected)
  if unexpected:
    raise UserError(f"{source} has {_tensors(len(unexpected))} that pytorch-fid's FID Inception"
                    f" lacks (first: {unexpected[0]}); {CONVERT_HINT}")
  variables: Variables = {"params": {}, "batch_stats": {}}
  for name, shape in expected.items():
    value = given[name]
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
      kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
      raise UserError(f"{source}: tensor {name} is {kind}, not floating point; {CONVERT_HINT}")
    if value.shape != shape:
      raise UserError(f"{source}: tensor {name} has shape {value.shape}, expected {shape}"
                      f" (it must hold pytorch-fid's FID Inception weights); {CONVERT_HINT}")
    *modules, sub, tleaf = name.split(".")
    coll, leaf, axes = _TORCH_TO_FLAX[(sub, tleaf)]
    array = value.astype(np.float32)
    if axes is not None:
      array = np.transpose(array, axes)
    node = variables[coll]
    for m in modules + [sub]:
      node = node.setdefault(m, {})
    node[leaf] = jnp.asarray(array)
  return variables


def _read_npz(path: str, source: str) -> dict[str, np.ndarray]:
  try:
    # allow_pickle=False: a pickle inside a weights file could run arbitrary code.
    loaded = np.load(path, allow_pickle=False)
  except ValueError as e:
    if "pickle" in str(e):
      raise UserError(f"{source} holds pickled data, which is not loaded (unpickling can run"
                      f" arbitrary code); {CONVERT_HINT}") from e
    raise UserError(f"{source} is not a readable .npz file ({_why(e)}); {CONVERT_HINT}") from e
  except (OSError, EOFError, zipfile.BadZipFile) as e:
    raise UserError(f"{source} is not a readable .npz file ({_why(e)}); {CONVERT_HINT}") from e
  if not isinstance(loaded, np.lib.npyio.NpzFile):
    raise UserError(f"{source} holds one unnamed array, not named tensors; {CONVERT_HINT}")
  with loaded:
    if any(k.endswith("data.pkl") for k in loaded.files):
      raise UserError(f"{source} is a PyTorch checkpoint renamed to .npz (loading it needs"
                      f" pickle); {CONVERT_HINT}")
    arrays = {}
    for k in loaded.files:
      try:
        arrays[k] = loaded[k]
      except ValueError as e:
        if "pickle" in str(e):  # an object array: its items are pickled
          raise UserError(f"{source}: tensor {k} holds pickled objects, which are not loaded;"
                          f" {CONVERT_HINT}") from e
        raise UserError(f"{source}: tensor {k} is unreadable ({_why(e)}); {CONVERT_HINT}") from e
      except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{source}: tensor {k} is unreadable ({_why(e)}); {CONVERT_HINT}") from e
  return arrays


def _read_safetensors(path: str, source: str) -> dict[str, np.ndarray]:
  try:
    from safetensors.numpy import load_file  # optional: .npz needs nothing extra
  except ImportError as e:
    raise UserError(f"{source}: reading .safetensors needs the safetensors package: pip install"
                    " safetensors, or pass an .npz instead") from e
  try:
    return load_file(path)
  except Exception as e:  # safetensors raises its own error types for corrupt headers
    raise UserError(f"{source} is not a readable .safetensors file ({_why(e)});"
                    f" {CONVERT_HINT}") from e


def load_weights(path: str) -> Variables:
  """Reads the FID Inception weights (.npz, or .safetensors if installed) without pickle.

  The file's keys are pytorch-fid's state_dict names (num_batches_tracked may be present and is
  ignored). Returns {"params", "batch_stats"} for `InceptionV3().apply`.
  """
  source = f"--inception_weights {path}"
  if not os.path.isfile(path):
    raise UserError(f"{source} does not exist; {CONVERT_HINT}")
  ext = os.path.splitext(path)[1].lower()
  if ext == ".npz":
    arrays = _read_npz(path, source)
  elif ext == ".safetensors":
    arrays = _read_safetensors(path, source)
  elif ext in (".pth", ".pt", ".pkl", ".ckpt", ".bin"):
    raise UserError(f"{source} is a pickle-based file, which is not loaded (unpickling can run"
                    f" arbitrary code); {CONVERT_HINT}")
  else:
    raise UserError(f"{source} must be a .npz or .safetensors file, got {ext or 'no extension'};"
                    f" {CONVERT_HINT}")
  return state_dict_to_variables(arrays, source)
