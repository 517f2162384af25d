"""Evaluation protocols: what to sample, which metric fits which dataset, and the record.

Each result carries its protocol next to the number (sample counts, seed, geometry or
feature network), so a figure can be set beside a published one only when they match.
"""

import jax
import numpy as np

from aegan_jax.errors import UserError
from aegan_jax.metrics import modes as modes_lib

# The 2-D benchmarks' geometry (VEEGAN protocol; PROTOCOLS.md section 1).
MIXTURES = {
    "ring": (modes_lib.ring_means, modes_lib.RING_STD),
    "grid": (modes_lib.grid_means, modes_lib.GRID_STD),
}
VEEGAN_SAMPLES = 2500


def sample(strategy, state, num: int, seed: int, chunk: int = 10_000) -> np.ndarray:
  """num generator samples as numpy, drawn in chunks with keys fold_in(key(seed), i)."""
  generate = jax.jit(strategy.generate, static_argnums=2)
  key = jax.random.key(seed)
  return np.concatenate([
      np.asarray(generate(state, jax.random.fold_in(key, i), min(chunk, num - start)))
      for i, start in enumerate(range(0, num, chunk))])


def mixture_modes(dataset: str, samples: np.ndarray) -> dict:
  """The VEEGAN protocol on 2-D samples: modes captured, % HQ (within 3 std), reverse KL."""
  if dataset not in MIXTURES:
    raise UserError(f"the mode protocol for 2-D samples fits ring and grid, not {dataset!r}")
  means_fn, std = MIXTURES[dataset]
  means = means_fn()
  stats = modes_lib.mode_stats(samples, means, std)
  return {"modes_captured": stats["modes_captured"], "num_modes": len(means),
          "high_quality_percent": 100.0 * stats["high_quality_fraction"],
          "reverse_kl": stats["reverse_kl"], "counts": stats["counts"],
          "protocol": {"samples": int(len(samples)), "hq_threshold": "3 std", "std": std,
                       "reverse_kl": "KL(p_HQ || uniform over modes), nats"}}
