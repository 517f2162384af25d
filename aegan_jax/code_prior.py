"""Densities fitted to the autoencoder's codes: where noise must land for the decoder.

ae_pretrain's generator maps z ~ N(0, I) into code space with an affine map per component of
a Gaussian mixture fitted to the training codes (one component: the single Gaussian, i.e. PCA).
A mixture is what a clustered code space needs: one Gaussian over well-separated clusters puts
most of its mass between them, and the decoder turns that mass into samples between the modes.
The EM fit runs once, on the host, in float64; it is a pure function of the codes and a seed.
"""

import numpy as np


def affine_from_gaussian(mean: np.ndarray, cov: np.ndarray, latent_dim: int):
  """(kernel [latent_dim, code_dim], bias [code_dim]) with z @ kernel + bias ~ N(mean, cov)
  for z ~ N(0, I): the principal axes scaled by their standard deviations (probabilistic PCA
  when latent_dim < code_dim)."""
  evals, evecs = np.linalg.eigh(cov)
  top = np.argsort(evals)[::-1][:latent_dim]
  kernel = np.zeros((latent_dim, cov.shape[0]))
  kernel[:len(top)] = (evecs[:, top] * np.sqrt(np.clip(evals[top], 0, None))).T
  return kernel, mean


def fit_mixture(codes: np.ndarray, components: int, seed: int = 0, iterations: int = 100,
                max_points: int = 10_000, restarts: int = 1):
  """A full-covariance Gaussian mixture by EM (k-means++ start): (weights [K], means [K, d],
  covariances [K, d, d]). At most `max_points` codes (a fixed random subset) enter the fit.
  With `restarts` > 1, EM runs from that many starts and the fit of highest likelihood wins:
  one run can end with a component stretched over two clusters (a local optimum), which the
  decoder turns into a line of samples between modes."""
  rng = np.random.default_rng(seed)
  x = np.asarray(codes, np.float64)
  if len(x) > max_points:
    x = x[rng.choice(len(x), max_points, replace=False)]
  fits = [_em(x, components, rng, iterations) for _ in range(restarts)]
  return max(fits, key=lambda fit: fit[0])[1:]


def _em(x: np.ndarray, components: int, rng: np.random.Generator, iterations: int):
  """(mean log-likelihood, weights, means, covariances) of one EM run."""
  n, d = x.shape
  k = min(components, n)
  means = [x[rng.integers(n)]]
  for _ in range(k - 1):  # k-means++: far points are likely next centres
    dist = np.min(((x[:, None] - np.asarray(means)[None]) ** 2).sum(-1), axis=1)
    means.append(x[rng.choice(n, p=dist / dist.sum())] if dist.sum() > 0 else x[rng.integers(n)])
  means = np.asarray(means)
  reg = 1e-6 * max(np.var(x, axis=0).mean(), 1e-12) * np.eye(d)
  covs = np.repeat((np.cov(x, rowvar=False).reshape(d, d) + reg)[None], k, axis=0)
  weights = np.full(k, 1.0 / k)
  for _ in range(iterations):
    log_p = _log_gaussians(x, means, covs) + np.log(weights)
    log_p -= log_p.max(axis=1, keepdims=True)
    resp = np.exp(log_p)
    resp /= resp.sum(axis=1, keepdims=True)
    nk = resp.sum(axis=0) + 1e-10
    weights = nk / n
    means = (resp.T @ x) / nk[:, None]
    diff = x[None] - means[:, None]                                  # [K, n, d]
    covs = (np.einsum("kni,knj->kij", resp.T[:, :, None] * diff, diff, optimize=True)
            / nk[:, None, None] + reg)
  log_p = _log_gaussians(x, means, covs) + np.log(weights)
  top = log_p.max(axis=1, keepdims=True)
  log_likelihood = float(np.mean(top[:, 0] + np.log(np.exp(log_p - top).sum(axis=1))))
  return log_likelihood, weights, means, covs


def _log_gaussians(x, means, covs):
  """log N(x_n | mean_k, cov_k) for every n, k: [n, K] (batched over the components)."""
  chol = np.linalg.cholesky(covs)                                    # [K, d, d]
  sol = np.linalg.inv(chol) @ (x[None] - means[:, None]).transpose(0, 2, 1)  # [K, d, n]
  log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)      # half the log-determinant
  return (-0.5 * (sol ** 2).sum(1) - log_det[:, None] - 0.5 * x.shape[1] * np.log(2 * np.pi)).T


def mixture_map(codes: np.ndarray, latent_dim: int, components: int, seed: int = 0,
                restarts: int = 1):
  """The generator's mapping parameters for `components` (1: the single Gaussian, no EM):
  {'kernel': [latent_dim, d], 'bias': [d]} or {'kernel': [K, latent_dim, d], 'bias': [K, d],
  'logits': [K]}, float32."""
  codes = np.asarray(codes, np.float64)
  if components == 1:
    kernel, bias = affine_from_gaussian(codes.mean(0), np.cov(codes, rowvar=False), latent_dim)
    return {"kernel": kernel.astype(np.float32), "bias": bias.astype(np.float32)}
  weights, means, covs = fit_mixture(codes, components, seed, restarts=restarts)
  maps = [affine_from_gaussian(m, c, latent_dim) for m, c in zip(means, covs)]
  return {"kernel": np.stack([m[0] for m in maps]).astype(np.float32),
          "bias": np.stack([m[1] for m in maps]).astype(np.float32),
          "logits": np.log(weights).astype(np.float32)}
