"""The dcgan networks' 4x4 stride-2 convolutions, in the formulation each backend runs fastest.

The math is that of `nn.Conv(f, (4, 4), strides=2)` and `nn.ConvTranspose(f, (4, 4),
strides=2)` with 'SAME' padding: the same parameters (names, shapes, initializers), the same
outputs and gradients up to float rounding (tests/test_conv.py: 1e-5 on random inputs). Only
how XLA is asked to compute them changes (`--conv_impl`):

- 'stock': flax's layers as they are; XLA differentiates them. Right for GPU and TPU, where
  cuDNN and the TPU compiler handle every convolution and both of its gradients well.
- 'fast': a custom VJP that poses each of the six pieces (forward, input gradient and kernel
  gradient of the convolution and of the transposed convolution) as the computation XLA:CPU
  runs fastest. `python -m scripts.benchmark_conv` times every piece of the reference networks
  in both formulations (docs/performance.md has the table). On 2 cores at batch 256:
    * XLA's kernel gradient of a transposed convolution took 2.4 s for the generator's
      128->64 layer: the convolution is the adjoint of a strided one, so its kernel gradient
      is the strided convolution's, with input and output gradient exchanged (12 ms).
    * A kernel gradient contracts over the whole batch in one convolution whose operands
      (12.8 MB) spill the 4 MB L2 cache (38 ms for the 64->128 layer). Summed over batch chunks
      that fit (`_KERNEL_GRAD_ROWS`), from operands transposed once into chunk-major layouts,
      it takes 15 ms.
    * XLA derives an input gradient as a convolution over a zero-dilated input. The sub-pixel
      form is one stride-1 2x2 convolution over the 2x2 blocks folded into channels
      (space-to-depth), differentiated instead, in chunks of 128 rows (18 -> 13 ms). With
      one input channel (the image layer), one matmul gives every position's 4x4 patch of
      contributions, then the overlapping patches are summed (col2im).
  The transposed convolution is the adjoint of the convolution with the adjoint kernel
  (spatially flipped, input and output channels swapped), so its pieces are the convolution's
  with the roles of input and gradient exchanged:
    conv_transpose(x, K)         = input gradient of conv(., adjoint(K)) at x
    d conv_transpose(x, K) / dx  = conv(g, adjoint(K))
    d conv_transpose(x, K) / dK  = adjoint(kernel gradient of conv with input g, gradient x)
- 'auto' (default): 'fast' on CPU, 'stock' elsewhere, decided when the layer is traced, by
  the platform of the mesh it is traced for.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

IMPLS = ("auto", "stock", "fast")

_DN = ("NHWC", "HWIO", "NHWC")
_PAD = ((1, 1), (1, 1))  # 'SAME' for a 4x4 kernel at stride 2 on an even size
# Batch rows per kernel-gradient chunk: the chunk's input and output gradient stay in L2.
# Narrow inputs (the image layer) run best in smaller chunks (measured: 8 vs 32 rows, 2x).
_KERNEL_GRAD_ROWS = {"wide": 32, "narrow": 8}
# Batch rows per input-gradient chunk (measured at batch 256: 13.2 ms in chunks of 128 against
# 16.1 ms whole).
_INPUT_GRAD_ROWS = 128
_NARROW = 8  # input channels below which the input gradient is XLA's own and chunks are small


# The graph depends on the mesh the computation is traced for, not on the process: the
# trainer traces its steps under `jax.sharding.use_abstract_mesh(mesh)` (a notebook may do the
# same, or use `jax.set_mesh`); with no mesh set, one device of the default backend.
def batch_pieces_ok(n: int, rows: int) -> bool:
  """Whether a batch of n rows may be cut into pieces of `rows` (more than one, all equal).

  Only on a mesh of one device: a batch sharded over several would be resharded piece by
  piece.
  """
  mesh = jax.sharding.get_abstract_mesh()
  return n > rows and n % rows == 0 and (mesh.empty or mesh.size == 1)


def _platform() -> str:
  mesh = jax.sharding.get_abstract_mesh()
  device = None if mesh.empty else getattr(mesh, "abstract_device", None)
  return device.platform if device is not None else jax.default_backend()


def resolve(impl: str) -> str:
  """'auto' -> the formulation for the platform of the mesh being traced for."""
  if impl not in IMPLS:
    raise ValueError(f"unknown conv impl {impl!r}; choose from {IMPLS}")
  if impl == "auto":
    return "fast" if _platform() == "cpu" else "stock"
  return impl


def adjoint(kernel: jax.Array) -> jax.Array:
  """K'[i, j, o, c] = K[3 - i, 3 - j, c, o]: the kernel of the adjoint layer (an involution)."""
  return jnp.flip(kernel, (0, 1)).swapaxes(2, 3)


def stock_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """flax's Conv(f, (4, 4), strides=2, 'SAME') without bias."""
  return jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=_DN)


def stock_conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """flax's ConvTranspose(f, (4, 4), strides=2, 'SAME') without bias."""
  return jax.lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=_DN)


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(x, kernel, (2, 2), _PAD, dimension_numbers=_DN)


def _space_to_depth(x: jax.Array) -> jax.Array:
  """Pads by 1 and folds 2x2 blocks into channels: [N, H, W, C] -> [N, H/2+1, W/2+1, 4C]."""
  n, h, w, c = x.shape
  x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  x = x.reshape(n, h // 2 + 1, 2, w // 2 + 1, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h // 2 + 1, w // 2 + 1, 4 * c)


def _conv_s2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """_conv as a 2x2 stride-1 convolution over 2x2 blocks folded into channels."""
  c, o = kernel.shape[2:]
  k2 = kernel.reshape(2, 2, 2, 2, c, o).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * c, o)
  return jax.lax.conv_general_dilated(_space_to_depth(x), k2, (1, 1), "VALID",
                                      dimension_numbers=_DN)


def _input_grad(g: jax.Array, kernel: jax.Array, x_shape) -> jax.Array:
  """d <_conv(x, K), g> / dx, i.e. the transposed convolution of g."""
  if kernel.shape[2] < _NARROW:
    return _input_grad_narrow(g, kernel)
  f = _conv if kernel.shape[3] < _NARROW else _conv_s2d

  def one(g):
    return jax.vjp(lambda x: f(x, kernel), jnp.zeros((len(g), *x_shape[1:]), g.dtype))[1](g)[0]
  rows, n = _INPUT_GRAD_ROWS, g.shape[0]
  if not batch_pieces_ok(n, rows):
    return one(g)
  return jnp.concatenate([one(g[i:i + rows]) for i in range(0, n, rows)])


def _input_grad_narrow(g: jax.Array, kernel: jax.Array) -> jax.Array:
  """The input gradient for few input channels (an image): each output position's 4x4xC
  patch of contributions by one matmul, then the overlapping patches summed (col2im)."""
  n, h, w, o = g.shape
  c = kernel.shape[2]
  cols = jnp.einsum("nhwo,ko->nhwk", g, kernel.reshape(-1, o))
  # Tap i = 2a + r of output p lands on padded input row 2(p + a) + r: block p + a, phase r.
  cols = jnp.pad(cols.reshape(n, h, w, 2, 2, 2, 2, c), ((0, 0), (1, 1), (1, 1)) + ((0, 0),) * 5)
  blocks = sum(cols[:, 1 - a:2 - a + h, 1 - b:2 - b + w, a, :, b, :, :]
               for a in range(2) for b in range(2))  # [n, h + 1, w + 1, r_h, r_w, c]
  x = blocks.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h + 2, 2 * w + 2, c)
  return x[:, 1:-1, 1:-1, :]


def _kernel_grad(x: jax.Array, g: jax.Array, kernel_shape) -> jax.Array:
  """d <_conv(x, K), g> / dK, summed over batch chunks that fit in cache."""
  rows = _KERNEL_GRAD_ROWS["narrow" if kernel_shape[2] < _NARROW else "wide"]
  n, h, w, c = x.shape
  _, p, q, o = g.shape
  if n <= 2 * rows or not batch_pieces_ok(n, rows):
    rows = n
  t = n // rows
  # The kernel gradient is a convolution over x whose batch is x's channels and whose
  # features are the batch rows: x and g transposed once into chunk-major layouts, so each
  # chunk's operands are contiguous and XLA adds no transposes of its own.
  xt = x.reshape(t, rows, h, w, c).transpose(0, 4, 2, 3, 1)   # [t, C, H, W, rows]
  gt = g.reshape(t, rows, p, q, o).transpose(0, 2, 3, 1, 4)   # [t, p, q, rows, O]
  pad = ((1, 2 * p + 1 - h), (1, 2 * q + 1 - w))  # 4 output taps: 1 + H + high = 2P + 2
  parts = jnp.stack([jax.lax.conv_general_dilated(xt[i], gt[i], (1, 1), pad, rhs_dilation=(2, 2),
                                                  dimension_numbers=_DN) for i in range(t)])
  # The sum as a contraction with ones, not adds: XLA fuses adds (and the adjoint's transpose)
  # into each of the optimizer's elementwise consumers, which then all re-read every chunk
  # (measured: 20 ms against 15 ms with Adam's consumers at batch 256).
  total = jnp.einsum("t...,t->...", parts, jnp.ones(t, parts.dtype),
                     preferred_element_type=jnp.float32)  # [C, 4, 4, O]
  return total.transpose(1, 2, 0, 3).astype(x.dtype)


@jax.custom_vjp
def conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Conv 4x4, stride 2, 'SAME', of an even-sized NHWC x; kernel [4, 4, C, O]."""
  return _conv(x, kernel)


def _conv_fwd(x, kernel):
  return _conv(x, kernel), (x, kernel)


def _conv_bwd(res, g):
  x, kernel = res
  return _input_grad(g, kernel, x.shape), _kernel_grad(x, g, kernel.shape)


conv.defvjp(_conv_fwd, _conv_bwd)


@jax.custom_vjp
def conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """flax's ConvTranspose 4x4, stride 2, 'SAME': [N, h, w, C] -> [N, 2h, 2w, O]; kernel
  [4, 4, C, O]."""
  n, h, w, _ = x.shape
  return _input_grad(x, adjoint(kernel), (n, 2 * h, 2 * w, kernel.shape[-1]))


def _conv_transpose_fwd(x, kernel):
  return conv_transpose(x, kernel), (x, kernel)


def _conv_transpose_bwd(res, g):
  x, kernel = res
  k_adj = adjoint(kernel)
  return _conv(g, k_adj), adjoint(_kernel_grad(g, x, k_adj.shape))


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


class Conv4x4s2(nn.Module):
  """nn.Conv(features, (4, 4), strides=2) or, with transpose=True, nn.ConvTranspose(...).

  The parameters are flax's (`kernel` [4, 4, C, features], lecun-normal; `bias`, zeros), so a
  checkpoint does not depend on `impl`. `dtype` is the computation's (bfloat16 for mixed
  precision); the parameters stay float32.
  """
  features: int
  use_bias: bool = True
  transpose: bool = False
  impl: str = "auto"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (4, 4, x.shape[-1], self.features))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    # An odd input size pads asymmetrically under 'SAME' (the dcgan sizes never are odd).
    odd = not self.transpose and (x.shape[1] % 2 or x.shape[2] % 2)
    if resolve(self.impl) == "stock" or odd:
      y = (stock_conv_transpose if self.transpose else stock_conv)(x, kernel)
    else:
      y = (conv_transpose if self.transpose else conv)(x, kernel)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
    return y
