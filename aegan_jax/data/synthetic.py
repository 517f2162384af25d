"""2-D mixtures of Gaussians (ring, grid) and Stacked MNIST: the mode-collapse benchmarks.

Geometry as in docs/protocols.md (and the VEEGAN/ALI/PacGAN code), taken from
aegan_jax.metrics.modes so data and mode counting can never disagree:
  ring: 8 modes at (cos 2 pi i/8, sin 2 pi i/8), std 0.01;  grid: 25 modes at (i, j),
  i, j in {-4, -2, 0, 2, 4}, std 0.05. Modes are equally likely; the label is the mode index.
Stacked MNIST: three digits drawn at random, stacked as the channels of one 28x28x3 image;
the label 100 a + 10 b + c is the mode (1000 modes).

These are generated with a fixed seed (the dataset is the same for every run; the run's
--seed only changes the model), so nothing needs preparing, except the digits Stacked MNIST
is built from: full TFDS MNIST where it is prepared, else the offline mnist5k digits.
"""

import numpy as np

from aegan_jax.metrics import modes

NUM_TRAIN_2D, NUM_TEST_2D = 100_000, 10_000
NUM_TRAIN_STACKED, NUM_TEST_STACKED = 50_000, 10_000
_DATA_SEED = 20170101  # fixed: the dataset, not the run


def mixture(means: np.ndarray, std: float, n: int, rng: np.random.Generator):
  labels = rng.integers(0, len(means), size=n)
  points = means[labels] + std * rng.normal(size=(n, means.shape[1]))
  return points.astype(np.float32), labels.astype(np.int32)


def _mixture_splits(means: np.ndarray, std: float):
  rng = np.random.default_rng(_DATA_SEED)
  return {"train": mixture(means, std, NUM_TRAIN_2D, rng),
          "test": mixture(means, std, NUM_TEST_2D, rng)}


def load_ring(data_dir: str):
  del data_dir
  return _mixture_splits(modes.ring_means(), modes.RING_STD)


def load_grid(data_dir: str):
  del data_dir
  return _mixture_splits(modes.grid_means(), modes.GRID_STD)


def stack_digits(images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator):
  """n RGB images whose channels are three random digits; label = 100 a + 10 b + c."""
  idx = rng.integers(0, len(labels), size=(n, 3))
  stacked = np.concatenate([images[idx[:, c]] for c in range(3)], axis=-1)
  return stacked, (labels[idx] @ np.array([100, 10, 1])).astype(np.int32)


def load_stacked_mnist(data_dir: str):
  """Stacked MNIST from full MNIST if prepared in data_dir (or exported as arrays), else from
  mnist5k's digits."""
  from aegan_jax import data as data_lib
  from aegan_jax.data import arrays, tfds_source

  full = arrays.exists("mnist", data_dir) or tfds_source.is_prepared("mnist", data_dir)
  source = "mnist" if full else "mnist5k"
  splits = data_lib.DATASETS.get(source).load(data_dir)
  rng = np.random.default_rng(_DATA_SEED)
  return {"train": stack_digits(*splits["train"], NUM_TRAIN_STACKED, rng),
          "test": stack_digits(*splits["test"], NUM_TEST_STACKED, rng)}
