"""CPU speed-ups, switched on by one explicit call: `aegan_jax.cpu.enable()`.

Importing aegan_jax changes nothing in the process: no allocator setting, no lowering
registered, no compiler option. The entry points (aegan_jax/cli.py) call `enable()` before JAX
allocates anything, and a notebook or another program may do the same; until then the library
compiles and runs exactly as plain JAX would. What it switches on (docs/performance.md):

- allocator.keep_freed_memory: glibc's malloc keeps freed pages for reuse, so XLA:CPU's
  per-step buffers stop faulting in fresh zeroed pages every step; `compiler_options` then asks
  XLA for temporaries in blocks a glibc thread heap keeps.
- threefry.unroll_threefry_on_cpu: JAX's unrolled threefry lowering on CPU too (bit-identical
  random numbers, no loop per draw).

Either can be turned off from the environment for a measurement
(AEGAN_JAX_KEEP_FREED_MEMORY=0, AEGAN_JAX_UNROLL_THREEFRY=0). The dcgan networks' convolution
formulation is not a process setting: `--conv_impl` chooses it per run ('auto': by backend).

Standard library only at import (the PyTorch side of scripts.benchmark imports the allocator
without JAX).
"""

from aegan_jax.cpu import allocator, threefry


def enable() -> dict[str, bool]:
  """Switches the speed-ups on (idempotent); returns which took effect on this host."""
  return {"keeps_freed_memory": allocator.keep_freed_memory(),
          "threefry_unrolled": threefry.unroll_threefry_on_cpu()}


def compiler_options(backend: str) -> dict[str, int]:
  """jax.jit(compiler_options=...) for a large training step: empty unless `enable()` made
  the allocator keep freed memory on this (CPU) backend."""
  return allocator.xla_compiler_options(backend)
