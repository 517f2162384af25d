"""Mode counting for mixtures with known modes: the VEEGAN protocol, as PacGAN reports it.

For 2-D Gaussian mixtures (Srivastava et al. 2017; Lin et al. 2018): each sample goes to
its nearest mean (Euclidean); it is high quality (HQ) when that distance is below
threshold_std * std (strict, as in the PacGAN code). A mode is captured when it is the
nearest mean of at least one HQ sample. For data labelled by a classifier (Stacked MNIST,
1000 modes) every sample counts, its mode being its label.

reverse_kl = KL(p_gen || uniform over M modes) = sum_{i: p_i > 0} p_i log(p_i M), in nats,
p_gen the histogram of the counted samples over the modes (as PacGAN's code computes it).
It is 0 for a perfectly balanced generator, log(M) for one that puts everything on one
mode, and nan when no sample is counted (the histogram is undefined).

The benchmark geometries (ring: 8 modes on the unit circle, std 0.01; grid: 5 x 5 modes
2 apart, std 0.05) are here so that data and evaluation share one definition.
"""

import math

import numpy as np
from numpy.typing import ArrayLike

from aegan_jax.errors import UserError

RING_STD = 0.01
GRID_STD = 0.05


def ring_means(num_modes: int = 8, radius: float = 1.0) -> np.ndarray:
  """[num_modes, 2] means radius * (cos(2 pi i / n), sin(2 pi i / n)), i = 0..n-1.

  Not linspace(0, 2 pi, n), which repeats the first angle at 2 pi and so has n - 1 modes.
  """
  angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_means(side: int = 5, spacing: float = 2.0) -> np.ndarray:
  """[side^2, 2] means (i, j) on a centred square grid; default i, j in {-4, -2, 0, 2, 4}."""
  ticks = spacing * (np.arange(side) - (side - 1) / 2.0)
  i, j = np.meshgrid(ticks, ticks, indexing="ij")
  return np.stack([i.ravel(), j.ravel()], axis=1)


def reverse_kl_to_uniform(counts: ArrayLike) -> float:
  """KL(counts / sum || uniform) in nats; nan when all counts are 0."""
  counts = np.asarray(counts, np.float64)
  total = counts.sum()
  if total == 0:
    return math.nan
  p = counts[counts > 0] / total
  return float(np.sum(p * np.log(p * counts.shape[0])))


def _summary(counts: np.ndarray) -> dict:
  return {"modes_captured": int(np.count_nonzero(counts)),
          "reverse_kl": reverse_kl_to_uniform(counts),
          "counts": [int(c) for c in counts]}


def mode_stats(samples: ArrayLike, means: ArrayLike, std: float,
               threshold_std: float = 3.0) -> dict:
  """modes_captured, high_quality_fraction, reverse_kl, counts (HQ samples per mode) of
  samples [N, D] against mixture means [M, D] sharing one isotropic std."""
  x, mu = np.asarray(samples, np.float64), np.asarray(means, np.float64)
  if x.ndim != 2 or mu.ndim != 2 or x.shape[1] != mu.shape[1]:
    raise UserError(f"mode_stats needs samples [N, D] and means [M, D], got shapes {x.shape} "
                    f"and {mu.shape}")
  if x.shape[0] == 0:
    raise UserError("mode_stats got no samples: raise --num_samples")
  d2 = np.sum((x[:, None, :] - mu[None, :, :]) ** 2, axis=-1)
  nearest = np.argmin(d2, axis=1)
  distance = np.sqrt(d2[np.arange(x.shape[0]), nearest])
  high_quality = distance < threshold_std * std
  counts = np.bincount(nearest[high_quality], minlength=mu.shape[0])
  return {**_summary(counts), "high_quality_fraction": float(np.mean(high_quality))}


def count_modes_from_labels(labels: ArrayLike, num_modes: int) -> dict:
  """modes_captured, reverse_kl, counts for integer mode labels [N] in [0, num_modes)."""
  labels = np.asarray(labels)
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
  if labels.size and (labels.min() < 0 or labels.max() >= num_modes):
    raise ValueError(f"labels must lie in [0, {num_modes}), got [{labels.min()}, "
                     f"{labels.max()}]")
  return _summary(np.bincount(labels, minlength=num_modes))
