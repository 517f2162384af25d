"""FID InceptionV3: architecture against pytorch-fid's, pickle-free weight loading, the converter.

No real weights here (no network in tests): random values in the module's own variable tree,
and random state_dicts laid out by the PyTorch architecture table below. The full 299x299
forward is compiled twice per run (gray 28x28 and RGB 32x32 inputs); everything else reuses
those or runs on single layers.
"""

import importlib.util
import math
import os
import pickle
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax.errors import UserError
from aegan_jax.features import inception
from tests.conftest import run_module

MODEL = inception.InceptionV3()


# --- pytorch-fid's fid_inception_v3(), transcribed from torchvision's Inception3 ------------------
# One row per BasicConv2d: (module name, in_channels, out_channels, kernel_h, kernel_w). Written
# from the PyTorch definitions (torchvision.models.inception + pytorch-fid's patches, aux_logits
# off, num_classes=1008), independently of our Flax module, so the module is checked against it.

def _block_a(p: str, cin: int, pool_features: int) -> list[tuple]:
  return [(f"{p}.branch1x1", cin, 64, 1, 1),
          (f"{p}.branch5x5_1", cin, 48, 1, 1), (f"{p}.branch5x5_2", 48, 64, 5, 5),
          (f"{p}.branch3x3dbl_1", cin, 64, 1, 1), (f"{p}.branch3x3dbl_2", 64, 96, 3, 3),
          (f"{p}.branch3x3dbl_3", 96, 96, 3, 3),
          (f"{p}.branch_pool", cin, pool_features, 1, 1)]


def _block_b(p: str, cin: int) -> list[tuple]:
  return [(f"{p}.branch3x3", cin, 384, 3, 3),
          (f"{p}.branch3x3dbl_1", cin, 64, 1, 1), (f"{p}.branch3x3dbl_2", 64, 96, 3, 3),
          (f"{p}.branch3x3dbl_3", 96, 96, 3, 3)]


def _block_c(p: str, cin: int, c7: int) -> list[tuple]:
  return [(f"{p}.branch1x1", cin, 192, 1, 1),
          (f"{p}.branch7x7_1", cin, c7, 1, 1), (f"{p}.branch7x7_2", c7, c7, 1, 7),
          (f"{p}.branch7x7_3", c7, 192, 7, 1),
          (f"{p}.branch7x7dbl_1", cin, c7, 1, 1), (f"{p}.branch7x7dbl_2", c7, c7, 7, 1),
          (f"{p}.branch7x7dbl_3", c7, c7, 1, 7), (f"{p}.branch7x7dbl_4", c7, c7, 7, 1),
          (f"{p}.branch7x7dbl_5", c7, 192, 1, 7),
          (f"{p}.branch_pool", cin, 192, 1, 1)]


def _block_d(p: str, cin: int) -> list[tuple]:
  return [(f"{p}.branch3x3_1", cin, 192, 1, 1), (f"{p}.branch3x3_2", 192, 320, 3, 3),
          (f"{p}.branch7x7x3_1", cin, 192, 1, 1), (f"{p}.branch7x7x3_2", 192, 192, 1, 7),
          (f"{p}.branch7x7x3_3", 192, 192, 7, 1), (f"{p}.branch7x7x3_4", 192, 192, 3, 3)]


def _block_e(p: str, cin: int) -> list[tuple]:
  return [(f"{p}.branch1x1", cin, 320, 1, 1),
          (f"{p}.branch3x3_1", cin, 384, 1, 1), (f"{p}.branch3x3_2a", 384, 384, 1, 3),
          (f"{p}.branch3x3_2b", 384, 384, 3, 1),
          (f"{p}.branch3x3dbl_1", cin, 448, 1, 1), (f"{p}.branch3x3dbl_2", 448, 384, 3, 3),
          (f"{p}.branch3x3dbl_3a", 384, 384, 1, 3), (f"{p}.branch3x3dbl_3b", 384, 384, 3, 1),
          (f"{p}.branch_pool", cin, 192, 1, 1)]


CONVS = ([("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3),
          ("Conv2d_2b_3x3", 32, 64, 3, 3), ("Conv2d_3b_1x1", 64, 80, 1, 1),
          ("Conv2d_4a_3x3", 80, 192, 3, 3)]
         + _block_a("Mixed_5b", 192, 32) + _block_a("Mixed_5c", 256, 64)
         + _block_a("Mixed_5d", 288, 64) + _block_b("Mixed_6a", 288)
         + _block_c("Mixed_6b", 768, 128) + _block_c("Mixed_6c", 768, 160)
         + _block_c("Mixed_6d", 768, 160) + _block_c("Mixed_6e", 768, 192)
         + _block_d("Mixed_7a", 768) + _block_e("Mixed_7b", 1280) + _block_e("Mixed_7c", 2048))
FC = (1008, 2048)


def _expected_state_dict_shapes() -> dict[str, tuple[int, ...]]:
  out = {}
  for name, cin, cout, kh, kw in CONVS:
    out[f"{name}.conv.weight"] = (cout, cin, kh, kw)
    for buf in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
      out[f"{name}.{buf}"] = (cout,)
  out["fc.weight"] = FC
  out["fc.bias"] = (FC[0],)
  return out


EXPECTED = _expected_state_dict_shapes()
# Trainable parameters (conv weights, BatchNorm weight/bias, fc); running stats are buffers.
PARAMS = (sum(cout * cin * kh * kw + 2 * cout for _, cin, cout, kh, kw in CONVS)
          + FC[0] * FC[1] + FC[0])


# --- helpers --------------------------------------------------------------------------------------

def _random_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """PyTorch-layout tensors for every EXPECTED name; He-scaled so 94 layers stay finite."""
  rng = np.random.default_rng(seed)
  out = {}
  for name, shape in EXPECTED.items():
    if name.endswith("running_var"):
      a = rng.uniform(0.5, 1.5, shape)
    elif name.endswith("bn.weight"):
      a = rng.uniform(0.8, 1.2, shape)
    elif name.endswith("weight"):
      a = rng.normal(0.0, math.sqrt(2.0 / math.prod(shape[1:])), shape)
    else:  # biases and running means
      a = rng.normal(0.0, 0.1, shape)
    out[name] = a.astype(np.float32)
  return out


def _to_state_dict(variables) -> dict[str, np.ndarray]:
  """The inverse mapping, written here on its own: Flax variables -> PyTorch names and layouts."""
  leaf_names = {("params", "conv", "kernel"): "conv.weight",
                ("params", "bn", "scale"): "bn.weight", ("params", "bn", "bias"): "bn.bias",
                ("batch_stats", "bn", "mean"): "bn.running_mean",
                ("batch_stats", "bn", "var"): "bn.running_var",
                ("params", "fc", "kernel"): "fc.weight", ("params", "fc", "bias"): "fc.bias"}
  out = {}
  for coll in ("params", "batch_stats"):
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables[coll])[0]:
      keys = tuple(p.key for p in path)
      a = np.asarray(leaf)
      if keys[-1] == "kernel":
        a = a.transpose(3, 2, 0, 1) if a.ndim == 4 else a.T  # HWIO -> OIHW, [in, out] -> [out, in]
      out[".".join(keys[:-2] + (leaf_names[(coll, keys[-2], keys[-1])],))] = a
  return out


def _np_basic_conv(x, sd, name, stride, pad):
  """torch's BasicConv2d in numpy: cross-correlation with an OIHW weight, BN(eps 1e-3), relu."""
  w = sd[f"{name}.conv.weight"]
  _, _, kh, kw = w.shape
  x = np.pad(x, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0)))
  h = (x.shape[1] - kh) // stride + 1
  wd = (x.shape[2] - kw) // stride + 1
  out = 0.0
  for dy in range(kh):
    for dx in range(kw):
      patch = x[:, dy:dy + stride * (h - 1) + 1:stride, dx:dx + stride * (wd - 1) + 1:stride]
      out = out + patch @ w[:, :, dy, dx].T
  y = ((out - sd[f"{name}.bn.running_mean"]) / np.sqrt(sd[f"{name}.bn.running_var"] + 1e-3)
       * sd[f"{name}.bn.weight"] + sd[f"{name}.bn.bias"])
  return np.maximum(y, 0.0)


def _np_pool_3x3_same(x: np.ndarray, kind: str) -> np.ndarray:
  """F.avg_pool2d(count_include_pad=False) / F.max_pool2d with kernel 3, stride 1, padding 1."""
  fill = -np.inf if kind == "max" else 0.0
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=fill)
  windows = [xp[:, dy:dy + x.shape[1], dx:dx + x.shape[2]] for dy in range(3) for dx in range(3)]
  if kind == "max":
    return np.max(windows, axis=0)
  ones = np.pad(np.ones(x.shape[1:3]), 1)
  count = sum(ones[dy:dy + x.shape[1], dx:dx + x.shape[2]] for dy in range(3) for dx in range(3))
  return np.sum(windows, axis=0) / count[None, :, :, None]


def _np_fid_inception_a(x, sd, p):
  """pytorch-fid's FIDInceptionA.forward, in numpy."""
  c = lambda name, h, pad=(0, 0): _np_basic_conv(h, sd, f"{p}.{name}", 1, pad)  # noqa: E731
  b1 = c("branch1x1", x)
  b5 = c("branch5x5_2", c("branch5x5_1", x), (2, 2))
  b3 = c("branch3x3dbl_3", c("branch3x3dbl_2", c("branch3x3dbl_1", x), (1, 1)), (1, 1))
  bp = c("branch_pool", _np_pool_3x3_same(x, "avg"))
  return np.concatenate([b1, b5, b3, bp], axis=-1)


def _np_fid_inception_e(x, sd, p, pool):
  """pytorch-fid's FIDInceptionE_1 (pool="avg") / FIDInceptionE_2 (pool="max").forward."""
  c = lambda name, h, pad=(0, 0): _np_basic_conv(h, sd, f"{p}.{name}", 1, pad)  # noqa: E731
  b1 = c("branch1x1", x)
  b3 = c("branch3x3_1", x)
  b3 = np.concatenate([c("branch3x3_2a", b3, (0, 1)), c("branch3x3_2b", b3, (1, 0))], axis=-1)
  bd = c("branch3x3dbl_2", c("branch3x3dbl_1", x), (1, 1))
  bd = np.concatenate([c("branch3x3dbl_3a", bd, (0, 1)), c("branch3x3dbl_3b", bd, (1, 0))], -1)
  bp = c("branch_pool", _np_pool_3x3_same(x, pool))
  return np.concatenate([b1, b3, bd, bp], axis=-1)


def _torch_bilinear(x: np.ndarray, size: int) -> np.ndarray:
  """F.interpolate(x, (size, size), mode="bilinear", align_corners=False) on NHWC, in numpy."""
  def matrix(n_in: int) -> np.ndarray:
    src = np.maximum((np.arange(size) + 0.5) * (n_in / size) - 0.5, 0.0)  # torch clamps at 0
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    m = np.zeros((size, n_in))
    np.add.at(m, (np.arange(size), i0), 1.0 - frac)
    np.add.at(m, (np.arange(size), i1), frac)
    return m
  rows = np.einsum("yh,nhwc->nywc", matrix(x.shape[1]), x)
  return np.einsum("xw,nywc->nyxc", matrix(x.shape[2]), rows)


def _raises_one_line(match: str, fn, *args):
  with pytest.raises(UserError, match=match) as e:
    fn(*args)
  assert "\n" not in str(e.value)
  return str(e.value)


# Compiled once per input shape and shared by every test below.
_features = jax.jit(lambda v, x: MODEL.apply(v, x))
_features_and_logits = jax.jit(lambda v, x: MODEL.apply(v, x, return_logits=True))


@pytest.fixture(scope="module")
def variables():
  """Random values in exactly module.init's variable tree.

  The tree comes from module.init (abstractly, via eval_shape); the values are seeded numpy,
  because compiling module.init's 94 truncated-normal initializers takes ~30 s on 2 cores.
  """
  shapes = jax.eval_shape(MODEL.init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
  rng = np.random.default_rng(1)

  def fill(path, s):
    leaf = path[-1].key
    if leaf == "kernel":
      a = rng.normal(0.0, math.sqrt(2.0 / math.prod(s.shape[:-1])), s.shape)
    elif leaf in ("scale", "var"):
      a = rng.uniform(0.5, 1.5, s.shape)
    else:
      a = rng.normal(0.0, 0.1, s.shape)
    return jnp.asarray(a, s.dtype)
  return jax.tree.map_with_path(fill, shapes)


@pytest.fixture(scope="module")
def weights_npz(tmp_path_factory):
  """A random pytorch-fid-layout state_dict and its .npz."""
  sd = _random_state_dict()
  path = str(tmp_path_factory.mktemp("w") / "inception_fid.npz")
  np.savez(path, **sd)
  return sd, path


# --- architecture ---------------------------------------------------------------------------------

def test_names_and_shapes_match_pytorch_architecture():
  assert len(CONVS) == 94
  assert inception.state_dict_names_and_shapes() == EXPECTED
  conv_bn = [k for k in EXPECTED if k.endswith((".conv.weight", ".bn.weight", ".bn.bias",
                                                ".bn.running_mean", ".bn.running_var"))]
  assert len(conv_bn) == 94 * 5 and len(EXPECTED) == 94 * 5 + 2


def test_parameter_count(variables):
  # torchvision's inception_v3 has 27,161,264 parameters with its aux classifier (conv0 768->128
  # 1x1, conv1 128->768 5x5, fc 768->1000) and a 1000-way fc; pytorch-fid drops the aux head
  # and has 1008 classes.
  aux = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)
  assert PARAMS == 27_161_264 - aux + 8 * (2048 + 1) == 23_850_960
  assert sum(x.size for x in jax.tree.leaves(variables["params"])) == PARAMS
  assert (sum(x.size for x in jax.tree.leaves(variables["batch_stats"]))
          == sum(2 * cout for _, _, cout, _, _ in CONVS))


# --- forward --------------------------------------------------------------------------------------

def test_features_gray_28x28(variables):
  x = np.random.default_rng(2).uniform(size=(2, 28, 28, 1)).astype(np.float32)
  f = np.asarray(_features(variables, x))
  assert f.shape == (2, 2048) and np.isfinite(f).all()
  assert np.abs(f).max() > 0 and not np.allclose(f[0], f[1])


def test_features_and_logits_rgb_32x32(variables):
  x = np.random.default_rng(3).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  f, logits = _features_and_logits(variables, x)
  assert f.shape == (2, 2048) and logits.shape == (2, 1008)
  assert np.isfinite(np.asarray(f)).all() and np.isfinite(np.asarray(logits)).all()
  # The logits are fc of the pooled features.
  fc = variables["params"]["fc"]
  np.testing.assert_allclose(logits, f @ fc["kernel"] + fc["bias"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (1, 32, 32, 3), (1, 400, 350, 3)])
def test_preprocess_matches_torch_bilinear(shape):
  x = np.random.default_rng(4).uniform(size=shape).astype(np.float32)
  ref = 2.0 * _torch_bilinear(np.repeat(x, 3, axis=-1) if shape[-1] == 1 else x, 299) - 1.0
  got = np.asarray(inception.preprocess(jnp.asarray(x)))
  assert got.shape == (shape[0], 299, 299, 3)
  # float32 rounding of the interpolation weights: ~5e-5 at worst; a wrong tap would be ~1e-2.
  np.testing.assert_allclose(got, ref, atol=1e-4)


def test_preprocess_rejects_bad_images():
  _raises_one_line("NHWC", inception.preprocess, jnp.zeros((2, 28, 28, 2)))
  _raises_one_line("uint8 / 255", inception.preprocess, jnp.zeros((2, 28, 28, 3), jnp.uint8))


# --- weights --------------------------------------------------------------------------------------

def test_npz_round_trip_gives_same_features(variables, tmp_path):
  sd = _to_state_dict(variables)
  assert {k: v.shape for k, v in sd.items()} == EXPECTED
  assert {k: v.shape for k, v in inception.variables_to_state_dict(variables).items()} == EXPECTED
  for k, v in inception.variables_to_state_dict(variables).items():
    np.testing.assert_array_equal(v, sd[k])
  path = str(tmp_path / "w.npz")
  np.savez(path, **sd)
  loaded = inception.load_weights(path)
  jax.tree.map(np.testing.assert_array_equal, loaded, variables)
  x = np.random.default_rng(3).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  want_f, want_l = _features_and_logits(variables, x)
  got_f, got_l = _features_and_logits(loaded, x)
  np.testing.assert_array_equal(got_f, want_f)
  np.testing.assert_array_equal(got_l, want_l)


def test_loaded_layout_computes_torch_layers(weights_npz):
  """A torch-layout file gives the layers torch would compute (strided 3x3 and a 1x7 kernel)."""
  sd, path = weights_npz
  v = inception.load_weights(path)
  rng = np.random.default_rng(5)
  for name, layer, cin, stride, pad in [
      ("Conv2d_1a_3x3", inception.BasicConv2d(32, 3, strides=2), 3, 2, (0, 0)),
      ("Mixed_6b.branch7x7_2", inception.BasicConv2d(128, (1, 7), padding=(0, 3)), 128, 1, (0, 3))]:
    x = rng.normal(size=(2, 9, 11, cin)).astype(np.float32)
    node_p, node_b = v["params"], v["batch_stats"]
    for part in name.split("."):
      node_p, node_b = node_p[part], node_b[part]
    got = layer.apply({"params": node_p, "batch_stats": node_b}, x)
    np.testing.assert_allclose(got, _np_basic_conv(x, sd, name, stride, pad), rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(v["params"]["fc"]["kernel"], sd["fc.weight"].T)


@pytest.mark.parametrize("name,block,cin,reference", [
    ("Mixed_5b", inception.InceptionA(32), 192, _np_fid_inception_a),
    ("Mixed_7b", inception.InceptionE(max_pool=False), 1280,
     lambda x, sd, p: _np_fid_inception_e(x, sd, p, "avg")),
    ("Mixed_7c", inception.InceptionE(max_pool=True), 2048,
     lambda x, sd, p: _np_fid_inception_e(x, sd, p, "max")),
])
def test_blocks_match_pytorch_fid_forward(weights_npz, name, block, cin, reference):
  """Branch order, concatenation and the FID pool variants, on a small feature map."""
  sd, path = weights_npz
  v = inception.load_weights(path)
  x = np.random.default_rng(6).uniform(-1.0, 2.0, size=(1, 4, 5, cin)).astype(np.float32)
  got = block.apply({"params": v["params"][name], "batch_stats": v["batch_stats"][name]}, x)
  np.testing.assert_allclose(got, reference(x, sd, name), rtol=1e-3, atol=1e-3)


def test_load_tolerates_num_batches_tracked(weights_npz, tmp_path):
  sd, _ = weights_npz
  path = str(tmp_path / "w.npz")
  np.savez(path, **sd, **{"Conv2d_1a_3x3.bn.num_batches_tracked": np.array(0, np.int64)})
  inception.load_weights(path)


@pytest.mark.parametrize("edit,match", [
    ("drop", r"lacks 1 tensor \(first: Mixed_7c.branch_pool.conv.weight\); convert"),
    ("extra", r"has 1 tensor that pytorch-fid's FID Inception lacks \(first: AuxLogits.fc.weigh"),
    ("shape", r"fc.weight has shape \(1000, 2048\), expected \(1008, 2048\)"),
    ("object", r"Mixed_5b.branch1x1.bn.bias holds pickled objects"),
    ("int", r"Conv2d_1a_3x3.bn.bias is int64, not floating point"),
])
def test_bad_npz_is_one_line_user_error(weights_npz, tmp_path, edit, match):
  sd = dict(weights_npz[0])
  if edit == "drop":
    del sd["Mixed_7c.branch_pool.conv.weight"]
  elif edit == "extra":
    sd["AuxLogits.fc.weight"] = np.zeros((1000, 768), np.float32)
  elif edit == "shape":
    sd["fc.weight"] = np.zeros((1000, 2048), np.float32)
  elif edit == "object":
    sd["Mixed_5b.branch1x1.bn.bias"] = np.array([{"x": 1}] * 64, dtype=object)
  elif edit == "int":
    sd["Conv2d_1a_3x3.bn.bias"] = np.zeros((32,), np.int64)
  path = str(tmp_path / "bad.npz")
  np.savez(path, **sd)  # savez itself pickles object arrays: a file a user could be handed
  msg = _raises_one_line(match, inception.load_weights, path)
  assert msg.startswith(f"--inception_weights {path}")


def test_unsafe_or_unknown_files_are_one_line_user_errors(tmp_path):
  obj = np.array([{"x": 1}], dtype=object)
  np.save(tmp_path / "w.npy", obj, allow_pickle=True)
  _raises_one_line("must be a .npz or .safetensors file", inception.load_weights,
                   str(tmp_path / "w.npy"))
  with open(tmp_path / "w.pkl", "wb") as f:
    pickle.dump({"fc.weight": np.zeros(3)}, f)
  _raises_one_line("pickle-based file", inception.load_weights, str(tmp_path / "w.pkl"))
  # A pickle under an .npz name is refused by np.load(allow_pickle=False), not unpickled.
  with open(tmp_path / "p.npz", "wb") as f:
    pickle.dump({"fc.weight": np.zeros(3)}, f)
  _raises_one_line("holds pickled data", inception.load_weights, str(tmp_path / "p.npz"))
  np.save(tmp_path / "one.npy", np.zeros(3))
  os.replace(tmp_path / "one.npy", tmp_path / "one.npz")
  _raises_one_line("one unnamed array", inception.load_weights, str(tmp_path / "one.npz"))
  (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
  _raises_one_line("not a readable .npz", inception.load_weights, str(tmp_path / "junk.npz"))
  _raises_one_line("does not exist", inception.load_weights, str(tmp_path / "absent.npz"))


def test_safetensors_without_package_says_how(tmp_path, monkeypatch):
  path = tmp_path / "w.safetensors"
  path.write_bytes(b"\x00" * 16)
  monkeypatch.setitem(sys.modules, "safetensors", None)  # import fails as if not installed
  monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
  _raises_one_line("pip install safetensors", inception.load_weights, str(path))


def test_safetensors_round_trip(weights_npz, tmp_path):
  st = pytest.importorskip("safetensors.numpy")
  sd, _ = weights_npz
  path = str(tmp_path / "w.safetensors")
  st.save_file(sd, path)
  loaded = inception.load_weights(path)
  np.testing.assert_array_equal(loaded["params"]["fc"]["kernel"], sd["fc.weight"].T)


def test_load_weights_never_allows_pickle(weights_npz, monkeypatch):
  source = open(inception.__file__).read()
  assert "allow_pickle=True" not in source and "pickle.load" not in source
  calls = []
  real_load = np.load

  def spy(*args, **kwargs):
    calls.append(kwargs.get("allow_pickle"))
    return real_load(*args, **kwargs)
  monkeypatch.setattr(np, "load", spy)
  inception.load_weights(weights_npz[1])
  assert calls == [False]


# --- converter ------------------------------------------------------------------------------------

def test_convert_checks_and_drops_counters(weights_npz, tmp_path):
  from scripts import convert_inception_weights as conv
  sd = {k: v.astype(np.float64) for k, v in weights_npz[0].items()}
  sd["Conv2d_1a_3x3.bn.num_batches_tracked"] = np.array(7, np.int64)
  out = conv.convert(sd, "--src x.pth")
  assert set(out) == set(EXPECTED) and all(v.dtype == np.float32 for v in out.values())
  sd["fc.weight"] = np.zeros((1000, 2048))
  _raises_one_line(r"--src x.pth: tensor fc.weight has shape", conv.convert, sd, "--src x.pth")


def test_convert_script_without_torch_says_how(tmp_path):
  if importlib.util.find_spec("torch") is not None:
    pytest.skip("torch is installed here")
  src = tmp_path / "pt_inception.pth"
  src.write_bytes(b"not read")
  proc = run_module("scripts.convert_inception_weights", f"--src={src}",
                    f"--out={tmp_path / 'o.npz'}", timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "pip install torch" in proc.stderr and "Traceback" not in proc.stderr


def test_convert_script_with_torch(weights_npz, tmp_path):
  torch = pytest.importorskip("torch")
  sd = {k: torch.from_numpy(v) for k, v in weights_npz[0].items()}
  sd["Conv2d_1a_3x3.bn.num_batches_tracked"] = torch.tensor(0)
  src, out = tmp_path / "pt.pth", tmp_path / "out.npz"
  torch.save(sd, src)
  proc = run_module("scripts.convert_inception_weights", f"--src={src}", f"--out={out}",
                    timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  loaded = inception.load_weights(str(out))
  np.testing.assert_array_equal(loaded["params"]["fc"]["kernel"], weights_npz[0]["fc.weight"].T)
