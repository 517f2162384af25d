"""The fast formulations of the dcgan convolutions against flax's layers: same parameters, same
outputs and gradients (forward and both gradients within 1e-5, relative to the largest value)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax.models import conv, dcgan
from aegan_jax.models.dcgan import DCGANDecoder, DCGANDiscriminator


def _rel(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


@pytest.fixture(autouse=True)
def _exact_matmuls():
  # Compare the formulations' math, not the backend's reduced-precision matmul defaults.
  with jax.default_matmul_precision("highest"):
    yield


def _layer_value_and_grads(layer, params, x, target):
  """The layer's output and the gradients of a nonlinear loss of it, w.r.t. params and x."""
  def loss(p, x):
    return jnp.sum(target * jnp.tanh(layer.apply(p, x)))
  return jax.jit(lambda p, x: (layer.apply(p, x), jax.grad(loss, argnums=(0, 1))(p, x)))(
      params, x)


def _check_against_flax(transpose, impl, shape, features):
  x = jax.random.normal(jax.random.key(0), shape)
  flax_layer = (nn.ConvTranspose if transpose else nn.Conv)(features, (4, 4), strides=(2, 2))
  ours = conv.Conv4x4s2(features, transpose=transpose, impl=impl)
  params = flax_layer.init(jax.random.key(1), x)
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(2), p.shape), params)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, params)
  target = jax.random.normal(jax.random.key(3), flax_layer.apply(params, x).shape)
  want_y, want_g = _layer_value_and_grads(flax_layer, params, x, target)
  got_y, got_g = _layer_value_and_grads(ours, params, x, target)
  assert _rel(want_y, got_y) < 1e-5
  for w, g in zip(jax.tree.leaves(want_g), jax.tree.leaves(got_g)):
    assert _rel(w, g) < 1e-5


# (transpose, input shape, features): each exercises a different path of the fast formulation.
CASES = [
    (False, (3, 14, 14, 5), 7),   # conv: sub-pixel input gradient, whole-batch kernel gradient
    (True, (3, 14, 14, 5), 7),    # conv_transpose of the same: the roles exchanged
    (False, (2, 28, 28, 1), 6),   # an image layer: the narrow input gradient (matmul + col2im)
    (True, (2, 7, 7, 9), 1),      # a transposed layer to one channel: narrow kernel gradient
    (True, (2, 8, 8, 3), 4),      # 32x32x3 sizes
]


@pytest.mark.parametrize("impl", ["fast", "stock"])
@pytest.mark.parametrize("transpose,shape,features", CASES)
def test_matches_flax_layer(transpose, impl, shape, features):
  _check_against_flax(transpose, impl, shape, features)


@pytest.mark.parametrize("transpose,shape,features", [(False, (8, 8, 8, 16), 12),
                                                      (True, (8, 6, 6, 10), 1)])
def test_batch_chunked_gradients_match_flax(monkeypatch, transpose, shape, features):
  """The chunked paths (kernel gradient summed over batch chunks, input gradient computed
  chunk by chunk), with chunks of 2 rows so that a batch of 8 has several."""
  monkeypatch.setattr(conv, "_KERNEL_GRAD_ROWS", {"wide": 2, "narrow": 2})
  monkeypatch.setattr(conv, "_INPUT_GRAD_ROWS", 2)
  _check_against_flax(transpose, "fast", shape, features)


def test_adjoint_is_an_involution_and_the_layers_are_adjoint():
  k = jax.random.normal(jax.random.key(0), (4, 4, 3, 5))
  assert np.array_equal(conv.adjoint(conv.adjoint(k)), k)
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
  y = jax.random.normal(jax.random.key(2), (2, 4, 4, 5))
  # <conv(x, K), y> = <x, conv_transpose(y, adjoint(K))>
  lhs, rhs = jax.jit(lambda x, y, k: (jnp.sum(conv.conv(x, k) * y),
                                      jnp.sum(x * conv.conv_transpose(y, conv.adjoint(k)))))(
                                          x, y, k)
  assert abs(float(lhs - rhs)) < 1e-4 * abs(float(lhs))


@pytest.mark.parametrize("spectral_norm,microbatch", [(False, 0), (True, 0), (False, 2)])
def test_dcgan_networks_same_params_and_grads_under_both_impls(monkeypatch, spectral_norm,
                                                               microbatch):
  """microbatch=2: the fast discriminator passes a batch of 4 through its convolutions in two
  pieces (a cache-sized microbatch on CPU); the numbers must not change."""
  monkeypatch.setattr(dcgan, "MICROBATCH", microbatch)
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
  z = jax.random.normal(jax.random.key(1), (4, 16))
  for make, inp in [(lambda i: DCGANDiscriminator(8, spectral_norm, impl=i), x),
                    (lambda i: DCGANDecoder(8, (28, 28, 1), impl=i), z)]:
    stock, fast = make("stock"), make("fast")
    v = stock.init(jax.random.key(2), inp)
    assert jax.tree.map(jnp.shape, fast.init(jax.random.key(2), inp)) == jax.tree.map(jnp.shape, v)

    def grads(module):
      def f(params):
        out, _ = module.apply({**v, "params": params}, inp, train=True, mutable=["batch_stats"])
        return jnp.sum(jnp.sin(out))
      return jax.jit(jax.grad(f))(v["params"])

    for a, b in zip(jax.tree.leaves(grads(stock)), jax.tree.leaves(grads(fast))):
      assert _rel(a, b) < 1e-5


def test_auto_is_fast_on_cpu_and_names_are_checked():
  assert conv.resolve("auto") == ("fast" if jax.default_backend() == "cpu" else "stock")
  with pytest.raises(ValueError, match="unknown conv impl"):
    conv.resolve("fastest")


def test_batch_pieces_follow_the_mesh_traced_for_not_the_process():
  """The kernel gradient is summed over batch pieces on a one-device mesh (or none) and taken
  whole on a mesh of two, whatever devices this process has."""
  x, k = jnp.ones((256, 8, 8, 16)), jnp.ones((4, 4, 16, 16))
  count = lambda: str(jax.make_jaxpr(jax.grad(lambda k: conv.conv(x, k).sum()))(k)).count(
      "conv_general_dilated")
  alone = count()
  with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((1,), ("data",))):
    assert count() == alone
  with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((2,), ("data",))):
    whole = count()
  assert alone >= whole + 256 // 32 - 1, (alone, whole)  # at least the 8 kernel-grad pieces
