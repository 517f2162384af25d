"""Sample-quality and mode-coverage metrics, one module per family.

  fid               Frechet distance between Gaussian fits of two feature sets (float64)
  kid               Kernel Inception Distance: unbiased cubic-kernel MMD^2 over subsets
  inception_score   exp(E KL(p(y|x) || p(y))) from class logits or probabilities
  precision_recall  k-NN manifold precision/recall and density/coverage, chunked in jax
  modes             VEEGAN/PacGAN mode counts, HQ fraction and reverse KL; ring and grid

The feature extractors (Inception, classifiers) live in aegan_jax.features: everything here
takes arrays of features, outputs or samples and returns Python numbers. Import the functions
from their modules (`from aegan_jax.metrics.fid import fid`); nothing is re-exported here, so
a module name never hides behind a function of the same name.
"""
