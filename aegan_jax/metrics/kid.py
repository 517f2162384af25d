"""Kernel Inception Distance (Binkowski et al. 2018) between two sets of features.

KID is the squared maximum mean discrepancy under the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, estimated without bias on random subsets of m samples per set:

  MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
            - 2 sum_{i, j} k(x_i, y_j) / m^2

averaged over num_subsets subsets (as the reference implementations do); the spread over
subsets is returned too. Being unbiased, the estimate can be slightly negative when the
two distributions are equal.
"""

import numpy as np
from numpy.typing import ArrayLike

from aegan_jax.errors import UserError


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """k(x_i, y_j) = (x_i . y_j / d + 1)^3 for all pairs: [n, d] x [m, d] -> [n, m]."""
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: ArrayLike, y: ArrayLike) -> float:
  """The unbiased MMD^2 estimate between two equally sized samples [m, d] (m >= 2)."""
  x, y = _as_float(x), _as_float(y)
  m = x.shape[0]
  if y.shape[0] != m or m < 2:
    raise ValueError(f"mmd2_unbiased needs two samples of equal size >= 2, got {x.shape[0]} "
                     f"and {y.shape[0]}")
  k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  # Sums in float64 whatever the kernel dtype: MMD^2 is a small difference of large sums.
  off_diag = (k_xx.sum(dtype=np.float64) - np.trace(k_xx, dtype=np.float64)
              + k_yy.sum(dtype=np.float64) - np.trace(k_yy, dtype=np.float64))
  return float(off_diag / (m * (m - 1)) - 2.0 * k_xy.sum(dtype=np.float64) / (m * m))


def _as_float(features: ArrayLike) -> np.ndarray:
  x = np.asarray(features)
  # float32 Gram matrices are accurate enough here (errors average out over m^2 terms) and
  # twice as fast; float64 input stays float64.
  return x.astype(np.result_type(x.dtype, np.float32), copy=False)


def kid(features_a: ArrayLike, features_b: ArrayLike, subset_size: int = 1000,
        num_subsets: int = 100, seed: int = 0) -> tuple[float, float]:
  """(mean, std) of the unbiased MMD^2 over num_subsets random subsets of subset_size each.

  Subsets are drawn without replacement within a subset, independently across subsets,
  from numpy's generator seeded with `seed`, so the result is reproducible.
  """
  a, b = _as_float(features_a), _as_float(features_b)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise UserError(f"KID needs two [num_samples, dim] feature arrays of one dim, got shapes "
                    f"{a.shape} and {b.shape}: compute both with the same feature extractor")
  if subset_size < 2:
    raise UserError(f"KID subset size is {subset_size}, the unbiased estimator needs at "
                    "least 2: raise --kid_subset_size")
  if num_subsets < 1:
    raise UserError(f"KID needs at least one subset, got num_subsets={num_subsets}")
  if min(a.shape[0], b.shape[0]) < subset_size:
    raise UserError(f"KID with subset size {subset_size} needs at least {subset_size} samples "
                    f"per set, got {a.shape[0]} and {b.shape[0]}: raise --num_samples to "
                    f"{subset_size} or lower --kid_subset_size")
  rng = np.random.default_rng(seed)
  values = np.array([
      mmd2_unbiased(a[rng.choice(a.shape[0], subset_size, replace=False)],
                    b[rng.choice(b.shape[0], subset_size, replace=False)])
      for _ in range(num_subsets)])
  return float(values.mean()), float(values.std())
