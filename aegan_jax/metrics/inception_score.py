"""Inception Score (Salimans et al. 2016) from a classifier's outputs on generated samples.

IS = exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the split, computed on
num_splits equal consecutive splits (the remainder N mod num_splits is left out, as in the
reference implementation) and reported as mean and standard deviation over the splits.
Work is in float64 log space: from logits via log_softmax, so confident predictions do
not underflow to log(0).
"""

import numpy as np
from numpy.typing import ArrayLike

from aegan_jax.errors import UserError


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
  top = np.max(x, axis=axis, keepdims=True)
  top = np.where(np.isfinite(top), top, 0.0)  # an all -inf column stays -inf, not nan
  with np.errstate(divide="ignore"):
    return np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top


def _log_probs(x: np.ndarray, from_probs: bool) -> np.ndarray:
  if from_probs:
    with np.errstate(divide="ignore"):
      return np.log(x)
  return x - _logsumexp(x, axis=1)


def _split_score(log_p: np.ndarray) -> float:
  """exp of the mean KL(p(y|x) || p(y)) over the rows of one split of log p(y|x)."""
  log_py = _logsumexp(log_p, axis=0) - np.log(log_p.shape[0])
  p = np.exp(log_p)
  # 0 log 0 = 0: classes with zero probability (possible with probability inputs) add nothing.
  with np.errstate(invalid="ignore"):
    terms = np.where(p > 0, p * (log_p - log_py), 0.0)
  return float(np.exp(np.mean(np.sum(terms, axis=1))))


def inception_score(logits_or_probs: ArrayLike, num_splits: int = 10, *,
                    from_probs: bool = False) -> tuple[float, float]:
  """(mean, std) of the Inception Score over splits of [N, C] class logits (or probabilities).

  With from_probs=True the rows are taken as probabilities p(y|x) (non-negative, summing
  to 1); otherwise as logits, normalized with log_softmax.
  """
  x = np.asarray(logits_or_probs)
  if x.ndim != 2:
    raise UserError(f"Inception score needs [num_samples, num_classes] outputs, got shape "
                    f"{x.shape}")
  if num_splits < 1 or x.shape[0] < num_splits:
    raise UserError(f"Inception score with {num_splits} splits needs at least {num_splits} "
                    f"samples, got {x.shape[0]}: raise --num_samples or use fewer splits")
  if from_probs and np.any(x < 0):
    raise UserError("Inception score got negative probabilities: pass logits with "
                    "from_probs=False")
  size = x.shape[0] // num_splits
  # float64 one split at a time: 50k x 1000 outputs would be 400 MB at once.
  splits = (np.asarray(x[i * size:(i + 1) * size], np.float64) for i in range(num_splits))
  scores = np.array([_split_score(_log_probs(split, from_probs)) for split in splits])
  return float(scores.mean()), float(scores.std())

