"""Metrics against independent references: textbook formulas, closed forms, brute force."""

import contextlib
import itertools
import math

import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax.errors import UserError
from aegan_jax.metrics.fid import fid, frechet_distance
from aegan_jax.metrics.inception_score import inception_score
from aegan_jax.metrics.kid import kid, mmd2_unbiased
from aegan_jax.metrics.modes import (count_modes_from_labels, grid_means, mode_stats,
                                     ring_means, GRID_STD, RING_STD)
from aegan_jax.metrics.precision_recall import density_coverage, precision_recall


# ------------------------------------------------------------------------------------ FID

def correlated_features(rng: np.random.Generator, n: int, d: int, shift: float
                        ) -> np.ndarray:
  """float32 features with a dense, well-conditioned covariance and uneven scales, so the
  scipy reference below is itself accurate."""
  mixing = np.eye(d) + 0.5 * rng.standard_normal((d, d)) / math.sqrt(d)
  scales = np.exp(rng.uniform(-1.0, 1.0, d))
  z = rng.standard_normal((n, d))
  return ((z @ mixing) * scales + shift * rng.standard_normal(d)).astype(np.float32)


def one_blas_thread():
  """sqrtm's Schur form is a chain of small BLAS calls: on CPUs shared with other jobs two
  BLAS threads wait on each other and take 3x longer at D = 2048 than one does."""
  try:
    from threadpoolctl import threadpool_limits
  except ImportError:
    return contextlib.nullcontext()
  return threadpool_limits(limits=1, user_api="blas")


def textbook_fid(a: np.ndarray, b: np.ndarray) -> float:
  """The formula as usually written, with scipy.linalg.sqrtm on the product."""
  scipy_linalg = pytest.importorskip("scipy.linalg")
  a, b = a.astype(np.float64), b.astype(np.float64)
  mu1, mu2 = a.mean(0), b.mean(0)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  with one_blas_thread():
    covmean = scipy_linalg.sqrtm(s1 @ s2)
  if np.iscomplexobj(covmean):
    assert np.abs(covmean.imag).max() < 1e-6 * np.abs(covmean.real).max()
    covmean = covmean.real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("d, n, rtol", [(64, 2000, 1e-4), (2048, 3000, 1e-3)])
def test_fid_matches_scipy_sqrtm(d, n, rtol):
  rng = np.random.default_rng(d)
  a = correlated_features(rng, n, d, shift=0.0)
  b = correlated_features(rng, n, d, shift=0.3)
  want = textbook_fid(a, b)
  assert want > 1.0  # far from 0, so a relative error means something
  assert fid(a, b) == pytest.approx(want, rel=rtol)


def test_fid_with_fewer_samples_than_dimensions():
  # Singular covariances: sqrtm is unreliable here, but with S = A^T A / (n - 1) for the
  # centred data A, tr sqrt(S1 S2) is the sum of singular values of A B^T / (n - 1).
  rng = np.random.default_rng(11)
  n, d = 120, 256
  a = correlated_features(rng, n, d, shift=0.0).astype(np.float64)
  b = correlated_features(rng, n, d, shift=0.3).astype(np.float64)
  ca, cb = a - a.mean(0), b - b.mean(0)
  nuclear = np.linalg.svd(ca @ cb.T / (n - 1), compute_uv=False).sum()
  want = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.sum(ca ** 2) / (n - 1)
          + np.sum(cb ** 2) / (n - 1) - 2 * nuclear)
  assert fid(a, b) == pytest.approx(want, rel=1e-12)


def test_fid_of_a_set_with_itself_is_zero():
  a = correlated_features(np.random.default_rng(0), 1000, 64, shift=1.0)
  assert abs(fid(a, a)) < 1e-6
  assert abs(fid(jnp.asarray(a), a)) < 1e-6  # jax arrays are accepted as they are


def test_frechet_distance_closed_forms():
  rng = np.random.default_rng(1)
  d = 6
  mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
  # Covariances diagonal in one (random) basis commute: FID = |dmu|^2 + sum (sqrt a - sqrt b)^2.
  # One eigenvalue is 0 in each, the singular case the clipping must handle.
  q, _ = np.linalg.qr(rng.standard_normal((d, d)))
  ev1 = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
  ev2 = np.array([1.0, 0.0, 4.0, 0.25, 3.0, 9.0])
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(ev1) - np.sqrt(ev2)) ** 2)
  for basis in (np.eye(d), q):
    s1, s2 = basis @ np.diag(ev1) @ basis.T, basis @ np.diag(ev2) @ basis.T
    # A zero eigenvalue computed as ~1e-16 would be ~1e-8 under a bare square root.
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-12)
  # Equal covariances leave only the mean term, whatever the covariance.
  a = rng.standard_normal((d, d))
  s = a @ a.T
  assert frechet_distance(mu1, s, mu2, s) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-9)


def test_fid_of_sampled_gaussians_approaches_closed_form():
  rng = np.random.default_rng(2)
  n, sd1, sd2 = 200_000, np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.5])
  a = rng.normal(0.0, sd1, (n, 3))
  b = rng.normal(1.0, sd2, (n, 3))
  want = 3 * 1.0 + np.sum((sd1 - sd2) ** 2)
  assert fid(a, b) == pytest.approx(want, rel=0.02)


def test_fid_rejects_mismatched_or_too_few_features():
  with pytest.raises(UserError, match="dimensions differ"):
    fid(np.zeros((10, 3)), np.zeros((10, 4)))
  with pytest.raises(UserError, match="at least 2"):
    fid(np.zeros((1, 3)), np.zeros((10, 3)))


# ------------------------------------------------------------------------------------ KID

def loop_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """The unbiased estimator term by term, straight from Binkowski et al. (2018), eq. 3."""
  m, d = x.shape
  k = lambda u, v: (float(np.dot(u, v)) / d + 1.0) ** 3
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
  return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_matches_explicit_loop():
  rng = np.random.default_rng(3)
  x, y = rng.standard_normal((12, 3)), rng.standard_normal((12, 3)) + 0.5
  want = loop_mmd2(x, y)
  assert mmd2_unbiased(x, y) == pytest.approx(want, rel=1e-10)
  # A subset of the whole set is a permutation of it, and MMD^2 ignores order.
  mean, std = kid(x, y, subset_size=12, num_subsets=3)
  assert mean == pytest.approx(want, rel=1e-10)
  assert std == pytest.approx(0.0, abs=1e-10)


def test_kid_is_unbiased_for_equal_distributions():
  rng = np.random.default_rng(4)
  m, d, trials = 40, 4, 400
  unbiased, biased = [], []
  for t in range(trials):
    x, y = rng.standard_normal((m, d)), rng.standard_normal((m, d))
    unbiased.append(kid(x, y, subset_size=m, num_subsets=1, seed=t)[0])
    # The V-statistic (diagonal kept) is biased upwards: the test below must be able to tell.
    k = lambda u, v: (u @ v.T / d + 1.0) ** 3
    biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
  sem = np.std(unbiased) / math.sqrt(trials)
  assert abs(np.mean(unbiased)) < 4 * sem
  assert np.mean(biased) > 10 * sem


def test_kid_separates_same_from_different_distributions():
  rng = np.random.default_rng(5)
  a, b = rng.standard_normal((600, 16)), rng.standard_normal((600, 16))
  c = rng.standard_normal((600, 16)) * 1.2 + 0.3
  same, _ = kid(a, b, subset_size=200, num_subsets=20)
  different, _ = kid(a, c, subset_size=200, num_subsets=20)
  assert different > 0
  assert abs(same) < 0.05 * different


def test_kid_with_too_few_samples_names_the_flags():
  with pytest.raises(UserError, match="--num_samples.*--kid_subset_size"):
    kid(np.zeros((50, 4)), np.zeros((1000, 4)), subset_size=100)


# ------------------------------------------------------------------------ Inception score

def test_inception_score_extremes():
  num_classes, splits = 7, 5
  uniform = np.zeros((num_classes * splits * 4, num_classes), np.float32)
  assert inception_score(uniform, splits)[0] == pytest.approx(1.0, abs=1e-9)
  # Confident, evenly spread predictions: every split holds every class equally often.
  labels = np.arange(num_classes * splits * 4) % num_classes
  one_hot = np.eye(num_classes)[labels]
  mean, std = inception_score(one_hot, splits, from_probs=True)
  assert mean == pytest.approx(num_classes, rel=1e-12)
  assert std == pytest.approx(0.0, abs=1e-9)
  mean, _ = inception_score(200.0 * one_hot, splits)  # as logits, with huge margins
  assert mean == pytest.approx(num_classes, rel=1e-9)


def test_inception_score_matches_direct_formula():
  rng = np.random.default_rng(6)
  logits = rng.standard_normal((103, 10)) * 3
  splits = 4
  size = 103 // splits
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  want = []
  for i in range(splits):
    part = p[i * size:(i + 1) * size]
    py = part.mean(0)
    want.append(math.exp(np.mean(np.sum(part * (np.log(part) - np.log(py)), axis=1))))
  mean, std = inception_score(logits, splits)
  assert mean == pytest.approx(np.mean(want), rel=1e-10)
  assert std == pytest.approx(np.std(want), rel=1e-8)
  assert inception_score(p, splits, from_probs=True)[0] == pytest.approx(mean, rel=1e-10)


def test_inception_score_with_too_few_samples():
  with pytest.raises(UserError, match="--num_samples"):
    inception_score(np.zeros((5, 10)), num_splits=10)


# ------------------------------------------------------------ Precision/recall, density/coverage

def brute_force(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int) -> tuple:
  """All four metrics from full float64 distance matrices, following the two papers."""
  dist = lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
  rr, ff, fr = dist(real, real), dist(fake, fake), dist(fake, real)
  radius = lambda dd, k: np.sort(dd, axis=1)[:, k]  # column 0 is the point itself
  precision = np.mean(np.any(fr <= radius(rr, k_pr)[None, :], axis=1))
  recall = np.mean(np.any(fr.T <= radius(ff, k_pr)[None, :], axis=1))
  r_dc = radius(rr, k_dc)
  density = np.sum(fr < r_dc[None, :]) / (k_dc * fake.shape[0])
  coverage = np.mean(fr.min(axis=0) < r_dc)
  return precision, recall, density, coverage


def test_precision_recall_density_coverage_match_brute_force():
  rng = np.random.default_rng(7)
  real = rng.standard_normal((300, 5))
  fake = rng.standard_normal((250, 5)) * 1.3 + 0.4
  want = brute_force(real, fake, k_pr=3, k_dc=5)
  # chunk_size 64 divides neither set: the zero-padded last chunk must not leak in.
  got = (*precision_recall(real, fake, k=3, chunk_size=64),
         *density_coverage(real, fake, k=5, chunk_size=64))
  # One sample either way allowed, for float32 distances landing on a radius.
  assert got == pytest.approx(want, abs=1.5 / 250)
  assert 0.1 < want[0] < 0.99 and 0.1 < want[1] < 0.99  # a case where all four can be wrong


def test_identical_sets_are_fully_precise_and_covered():
  x = np.random.default_rng(8).standard_normal((400, 8))
  assert precision_recall(x, x, k=3, chunk_size=128) == (1.0, 1.0)
  density, coverage = density_coverage(x, x, k=5, chunk_size=128)
  assert coverage == 1.0
  assert density == pytest.approx(1.0, abs=0.05)  # each ball holds itself and k-1 others


def test_far_apart_sets_score_zero():
  rng = np.random.default_rng(9)
  real, fake = rng.standard_normal((200, 4)), rng.standard_normal((200, 4)) + 100.0
  assert precision_recall(real, fake) == (0.0, 0.0)
  assert density_coverage(real, fake) == (0.0, 0.0)


def test_fake_covering_half_the_clusters():
  rng = np.random.default_rng(10)
  centers = 20.0 * np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])
  real = np.concatenate([c + rng.standard_normal((250, 2)) for c in centers])
  fake = np.concatenate([c + rng.standard_normal((250, 2)) for c in centers[:2]])
  precision, recall = precision_recall(real, fake)
  assert precision > 0.95
  assert recall == pytest.approx(0.5, abs=0.03)
  _, coverage = density_coverage(real, fake)
  assert coverage == pytest.approx(0.5, abs=0.03)


def test_manifold_metrics_reject_tiny_sets():
  with pytest.raises(UserError, match="--num_samples"):
    precision_recall(np.zeros((3, 2)), np.ones((10, 2)), k=3)


# ---------------------------------------------------------------------------------- Modes

def test_benchmark_geometries():
  ring, grid = ring_means(), grid_means()
  assert ring.shape == (8, 2) and grid.shape == (25, 2)
  for means in (ring, grid):
    gaps = np.linalg.norm(means[:, None] - means[None], axis=-1) + np.eye(len(means)) * 1e9
    assert gaps.min() > 0.5  # all distinct, none repeated at 2 pi
  np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0)
  angles = sorted(round(math.degrees(math.atan2(y, x))) % 360 for x, y in ring)
  assert angles == list(range(0, 360, 45))
  assert sorted(map(tuple, grid)) == list(itertools.product([-4, -2, 0, 2, 4], repeat=2))
  assert (RING_STD, GRID_STD) == (0.01, 0.05)


def test_samples_on_every_mode():
  means = ring_means()
  stats = mode_stats(np.repeat(means, 10, axis=0), means, RING_STD)
  assert stats["modes_captured"] == 8
  assert stats["high_quality_fraction"] == 1.0
  assert stats["reverse_kl"] == pytest.approx(0.0, abs=1e-9)
  assert stats["counts"] == [10] * 8


def test_samples_on_one_mode():
  means = grid_means()
  stats = mode_stats(np.tile(means[7], (30, 1)), means, GRID_STD)
  assert stats["modes_captured"] == 1
  assert stats["reverse_kl"] == pytest.approx(math.log(25), rel=1e-12)
  stats = mode_stats(np.tile(ring_means()[3], (30, 1)), ring_means(), RING_STD)
  assert stats["reverse_kl"] == pytest.approx(math.log(8), rel=1e-12)


def test_off_manifold_samples_do_not_count():
  ring = mode_stats(np.zeros((5, 2)), ring_means(), RING_STD)
  grid = mode_stats(np.ones((5, 2)), grid_means(), GRID_STD)
  for stats, num_modes in ((ring, 8), (grid, 25)):
    assert stats["modes_captured"] == 0
    assert stats["high_quality_fraction"] == 0.0
    assert stats["counts"] == [0] * num_modes
    assert math.isnan(stats["reverse_kl"])


def test_mixed_case_counts_exactly():
  means = ring_means()
  radial = lambda i, r: means[i] * (1.0 + r)  # r is the distance to mode i along its ray
  samples = np.array(
      [radial(0, 0.0)] * 3 + [radial(0, 0.02)] * 2     # 5 HQ on mode 0
      + [radial(3, -0.029)] * 3                        # 3 HQ on mode 3 (just inside 3 std)
      + [radial(5, 0.031)] * 2                         # just outside 3 std: not HQ
      + [[0.0, 0.0]] * 4)                              # off the ring
  stats = mode_stats(samples, means, RING_STD)
  assert stats["counts"] == [5, 0, 0, 3, 0, 0, 0, 0]
  assert stats["modes_captured"] == 2
  assert stats["high_quality_fraction"] == pytest.approx(8 / 14)
  p = np.array([5, 3]) / 8
  assert stats["reverse_kl"] == pytest.approx(np.sum(p * np.log(p / (1 / 8))), rel=1e-12)


def test_modes_from_classifier_labels():
  # Stacked MNIST: 1000 modes, a sample's mode is 100 d1 + 10 d2 + d3. Cover 250 evenly.
  digits = np.array(list(itertools.product(range(10), range(5), range(5))))
  labels = np.repeat(100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2], 4)
  stats = count_modes_from_labels(labels, 1000)
  assert stats["modes_captured"] == 250
  assert stats["reverse_kl"] == pytest.approx(math.log(1000 / 250), rel=1e-12)
  assert sum(stats["counts"]) == labels.size and max(stats["counts"]) == 4
  with pytest.raises(ValueError):
    count_modes_from_labels(np.array([0, 1000]), 1000)
