"""The seed mlp's matmuls timed one by one, in XLA and beside them in PyTorch (JSON lines).

  python -m scripts.benchmark_matmul --torch                 # both cores
  taskset -c 0 python -m scripts.benchmark_matmul --torch    # one core

A training step of the seed's networks (experiments/presets/seed.flags) is mostly nine
matmuls: for each of the two wide layers (D's 784 -> 128 and G's 128 -> 784), the forward
product x @ W, the input gradient dy @ W^T and the kernel gradient x^T @ dy. This script times
each of those alone, for each --batch_size, one JSON line per (framework, layer, piece, batch):
microseconds per call, the median of 5 rounds of --repeats back-to-back calls (for JAX, a
jitted call of that one product, dispatch included: ~4 us here; waited for once per round, as
a step's operations run back to back), and the GFLOP/s that gives. `cores` is the CPUs the process may
run on. It is the table behind docs/performance.md's "Matmul speed": how fast each framework's
matmul library is on these shapes, and how much a second core buys it. With --torch the same
products run in PyTorch (the optional `bench` extra) in a child process, so the two
frameworks never share a process or its thread pools.
"""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

from absl import flags

from aegan_jax import cli
from aegan_jax.errors import UserError

FLAGS = flags.FLAGS

# (name, in, out) of the seed networks' wide dense layers.
LAYERS = [("D.Dense_0", 784, 128), ("G.decoder.Dense_1", 128, 784)]
PIECES = ("forward", "input_grad", "kernel_grad")


def define_flags() -> None:
  flags.DEFINE_list("batch_size", ["64", "256"], "Batch sizes.")
  flags.DEFINE_integer("repeats", 200, "Calls per timed round (5 rounds; the median is reported).")
  flags.DEFINE_bool("torch", False, "Also time the same products in PyTorch (needs torch).")
  flags.DEFINE_enum("framework", "jax", ["jax", "torch"], "Which side this process times "
                    "(--torch starts a child with --framework=torch).")


def _us_per_call(call, wait, repeats: int) -> float:
  """Median over 5 rounds of `repeats` back-to-back calls, waited for at the end of each."""
  wait(call())  # compile / warm up
  rounds = []
  for _ in range(5):
    start = time.perf_counter()
    for _ in range(repeats):
      out = call()
    wait(out)
    rounds.append((time.perf_counter() - start) / repeats)
  return 1e6 * statistics.median(rounds)


def _jax_pieces(batch: int, n_in: int, n_out: int, repeats: int) -> dict[str, float]:
  import jax

  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (batch, n_in))
  w = jax.random.normal(keys[1], (n_in, n_out)) * 0.05
  dy = jax.random.normal(keys[2], (batch, n_out))
  pull = lambda x, w: jax.vjp(lambda x, w: x @ w, x, w)[1](dy)  # the products autodiff forms
  fns = {"forward": lambda x, w: x @ w, "input_grad": lambda x, w: pull(x, w)[0],
         "kernel_grad": lambda x, w: pull(x, w)[1]}
  jitted = {p: jax.jit(fns[p]) for p in PIECES}
  return {p: _us_per_call(lambda: jitted[p](x, w), jax.block_until_ready, repeats) for p in PIECES}


def _torch_pieces(batch: int, n_in: int, n_out: int, repeats: int) -> dict[str, float]:
  import torch

  gen = torch.Generator().manual_seed(0)
  x, dy = torch.randn(batch, n_in, generator=gen), torch.randn(batch, n_out, generator=gen)
  w = torch.randn(n_in, n_out, generator=gen) * 0.05
  fns = {"forward": lambda: x @ w, "input_grad": lambda: dy @ w.t(),
         "kernel_grad": lambda: x.t() @ dy}  # what autograd runs for a Linear layer
  return {p: _us_per_call(fns[p], lambda out: None, repeats) for p in PIECES}  # synchronous


def _version(framework: str) -> str:
  if framework == "jax":
    import jax
    return f"jax {jax.__version__}"
  import torch
  return f"torch {torch.__version__} ({torch.get_num_threads()} threads)"


def _lines(framework: str, batches: list[int], repeats: int):
  pieces, version = (_jax_pieces if framework == "jax" else _torch_pieces), _version(framework)
  for batch in batches:
    for name, n_in, n_out in LAYERS:
      for piece, us in pieces(batch, n_in, n_out, repeats).items():
        yield {"framework": version, "layer": name, "piece": piece, "batch_size": batch,
               "us": round(us, 1), "gflops": round(2 * batch * n_in * n_out / us / 1e3, 1),
               "cores": len(os.sched_getaffinity(0))}


def main(argv) -> None:
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags look like --torch")
  try:
    batches = [int(b) for b in FLAGS.batch_size]
  except ValueError:
    batches = [0]
  if not batches or min(batches) <= 0 or FLAGS.repeats <= 0:
    raise UserError("--batch_size and --repeats must be positive integers")
  # Checked before any timing, not after the JAX side has run.
  if (FLAGS.torch or FLAGS.framework == "torch") and importlib.util.find_spec("torch") is None:
    raise UserError("--torch needs PyTorch, which is not installed: pip install -e '.[bench]' "
                    "(or drop --torch)")
  for line in _lines(FLAGS.framework, batches, FLAGS.repeats):
    print(json.dumps(line), flush=True)
  if FLAGS.torch and FLAGS.framework == "jax":
    cmd = [sys.executable, "-m", "scripts.benchmark_matmul", "--framework=torch",
           f"--batch_size={','.join(map(str, batches))}", f"--repeats={FLAGS.repeats}"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.run(cmd, cwd=root, text=True, capture_output=True)
    if child.returncode:
      errors = [l for l in child.stderr.splitlines() if l.startswith("error: ")]
      raise UserError(errors[-1][len("error: "):] if errors else
                      f"the PyTorch side failed: {child.stderr.strip()[-300:]}")
    sys.stdout.write(child.stdout)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
