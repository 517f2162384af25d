"""Sample-quality and mode-coverage metrics, one module per family.

  fid               Frechet distance between Gaussian fits of two feature sets (float64)
  kid               Kernel Inception Distance: unbiased cubic-kernel MMD^2 over subsets
  inception_score   exp(E KL(p(y|x) || p(y))) from class logits or probabilities
  precision_recall  k-NN manifold precision/recall and density/coverage, chunked in jax
  modes             VEEGAN/PacGAN mode counts, HQ fraction and reverse KL; ring and grid

The feature extractors (Inception, classifiers) live elsewhere: everything here takes
arrays of features, outputs or samples and returns Python numbers.

The re-exported functions fid, kid, inception_score and precision_recall share their
modules' names, so after this package is imported `aegan_jax.metrics.fid` is the function;
reach a module's other names with `from aegan_jax.metrics.fid import gaussian_stats`.
"""

from aegan_jax.metrics.fid import fid, frechet_distance, gaussian_stats
from aegan_jax.metrics.inception_score import inception_score
from aegan_jax.metrics.kid import kid
from aegan_jax.metrics.modes import count_modes_from_labels, grid_means, mode_stats, ring_means
from aegan_jax.metrics.precision_recall import density_coverage, precision_recall

__all__ = [
    "count_modes_from_labels", "density_coverage", "fid", "frechet_distance",
    "gaussian_stats", "grid_means", "inception_score", "kid", "mode_stats", "precision_recall",
    "ring_means",
]
