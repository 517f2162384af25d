"""The pieces of the dcgan convolutions, timed in each formulation (JSON lines).

  python -m scripts.benchmark_conv                      # the reference networks at batch 256
  python -m scripts.benchmark_conv --batch_size=64 --impl=stock,fast

For every 4x4 stride-2 layer of the reference DCGAN (D: 28x28x1 -> 64 -> 128; G: 7x7x128 -> 64
-> 1, transposed) it times the forward pass, the input gradient and the kernel gradient under
each --impl of aegan_jax/models/conv.py, one JSON line per (layer, piece, impl): the median of
--repeats calls of a jitted function that computes just that piece, in milliseconds. This is
the table behind the per-backend choice of formulation (docs/performance.md); run it on a new
backend to see which formulation that backend wants.
"""

import json
import statistics
import time

from absl import flags
import jax

from aegan_jax import cli
from aegan_jax.errors import UserError
from aegan_jax.models import conv

FLAGS = flags.FLAGS

# (name, transposed, input [H, W, C], features) of the reference networks' strided layers.
LAYERS = [("D.Conv_0", False, (28, 28, 1), 64), ("D.Conv_1", False, (14, 14, 64), 128),
          ("G.ConvTranspose_0", True, (7, 7, 128), 64), ("G.ConvTranspose_1", True, (14, 14, 64), 1)]


def define_flags() -> None:
  flags.DEFINE_integer("batch_size", 256, "Batch size.")
  flags.DEFINE_list("impl", ["stock", "fast"], "Formulations: stock, fast.")
  flags.DEFINE_integer("repeats", 20, "Timed calls per piece; the median is reported.")


def _median_ms(fn, *args, repeats: int) -> float:
  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def time_layer(transposed: bool, shape, features: int, batch: int, impl: str, repeats: int):
  """{piece: ms} for one layer: forward, input gradient, kernel gradient."""
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (batch, *shape))
  kernel = jax.random.normal(keys[1], (4, 4, shape[-1], features)) * 0.05
  if impl == "stock":
    layer = conv.stock_conv_transpose if transposed else conv.stock_conv
  else:
    layer = conv.conv_transpose if transposed else conv.conv
  y = jax.eval_shape(layer, x, kernel)
  g = jax.random.normal(keys[2], y.shape)
  pull = lambda x, k: jax.vjp(layer, x, k)[1](g)
  return {
      "forward": _median_ms(jax.jit(layer), x, kernel, repeats=repeats),
      "input_grad": _median_ms(jax.jit(lambda x, k: pull(x, k)[0]), x, kernel, repeats=repeats),
      "kernel_grad": _median_ms(jax.jit(lambda x, k: pull(x, k)[1]), x, kernel,
                                repeats=repeats)}


def main(argv) -> None:
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags look like --impl=fast")
  bad = [i for i in FLAGS.impl if i not in ("stock", "fast")]
  if bad or not FLAGS.impl:
    raise UserError(f"unknown --impl {bad[0] if bad else ''!r}; choose stock and/or fast")
  if FLAGS.batch_size <= 0 or FLAGS.repeats <= 0:
    raise UserError("--batch_size and --repeats must be positive integers")
  device = jax.devices()[0]
  for name, transposed, shape, features in LAYERS:
    for impl in FLAGS.impl:
      for piece, ms in time_layer(transposed, shape, features, FLAGS.batch_size, impl,
                                  FLAGS.repeats).items():
        print(json.dumps({"layer": name, "piece": piece, "impl": impl,
                          "batch_size": FLAGS.batch_size, "ms": round(ms, 3),
                          "device_kind": device.device_kind, "platform": device.platform}),
              flush=True)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
