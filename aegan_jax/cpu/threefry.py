"""The threefry PRNG lowered for XLA:CPU as for every other backend: the same bits, faster.

JAX lowers threefry2x32 on CPU with its 20 rounds rolled into a while loop (to keep compile
times short for huge key arrays) and everywhere else unrolled. A training step draws its keys
and noise with a handful of small threefry calls (fold_in, split, normal), and on CPU each is
then a loop of several thunks: 9-11% of the seed's mlp step on 2 cores (docs/performance.md).
`unroll_threefry_on_cpu` registers JAX's unrolled lowering for CPU too. It is the same
algorithm written out, so every random number is bit-identical (tests/test_speed.py).
AEGAN_JAX_UNROLL_THREEFRY=0 in the environment keeps JAX's own lowering (for a measurement).
"""

import os

_done = False


def unroll_threefry_on_cpu() -> bool:
  """Registers the unrolled threefry lowering for CPU; True if it took effect.

  Reaches into JAX internals (jax._src), so it checks for them and does nothing (False) on a
  JAX version that has moved them; the rolled lowering is then used, as before.
  """
  global _done
  if _done:
    return True
  if os.environ.get("AEGAN_JAX_UNROLL_THREEFRY", "1") == "0":
    return False
  try:
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32
    primitive, rule = threefry2x32.threefry2x32_p, threefry2x32._threefry2x32_lowering_rule
  except (ImportError, AttributeError):
    return False
  mlir.register_lowering(primitive, rule, platform="cpu")
  _done = True
  return True
