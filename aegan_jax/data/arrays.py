"""Datasets as plain .npz files, for machines without TFDS (an accelerator image, a node cut
off from the network).

`python -m scripts.prepare_data --dataset=NAME --export_arrays` writes
<data_dir>/arrays/NAME.npz from the prepared dataset. Copy the data dir's `arrays/` (and its
`aegan_jax/classifiers/`, which evaluation reads) to the other machine: loading reads the file
first and never imports TFDS there.
"""

import os

import numpy as np

SPLITS = ("train", "test")


def path(name: str, data_dir: str) -> str:
  return os.path.join(data_dir, "arrays", f"{name}.npz")


def exists(name: str, data_dir: str) -> bool:
  return os.path.isfile(path(name, data_dir))


def read(name: str, data_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  with np.load(path(name, data_dir)) as f:
    return {s: (f[f"{s}_images"], f[f"{s}_labels"]) for s in SPLITS}


def write(name: str, splits: dict[str, tuple[np.ndarray, np.ndarray]], data_dir: str) -> str:
  """Writes the splits (uint8 images, int32 labels) atomically; returns the file's path."""
  target = path(name, data_dir)
  os.makedirs(os.path.dirname(target), exist_ok=True)
  tmp = target + ".tmp.npz"  # np.savez adds .npz to a name without it
  np.savez(tmp, **{f"{s}_{k}": a for s in SPLITS
                   for k, a in zip(("images", "labels"), splits[s])})
  os.replace(tmp, target)
  return target
