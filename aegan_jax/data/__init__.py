"""Datasets, looked up by name with --dataset, loaded whole and kept on the device.

Every named dataset is read through TFDS (tfds_source.py), or from its exported .npz file
where one exists (arrays.py: for machines without TFDS). A registry entry is a loader
`(data_dir) -> {'train': (images, labels), 'test': (images, labels)}` with uint8 NHWC images,
and the dataset's evaluation protocol (how its samples are scored: aegan_jax/evaluation.py
reads it); new datasets (synthetic ones included) are one function plus one registry line.
"""

import dataclasses
import functools
from typing import Callable, Iterator, Optional

import jax
import jax.numpy as jnp
import numpy as np

from aegan_jax.data import arrays, pipeline, tfds_source
from aegan_jax.errors import UserError
from aegan_jax.registry import Registry

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Protocol:
  """How a dataset's samples are scored.

  kind: 'mixture' (points around known modes: modes captured, % high quality, reverse KL),
  'stacked' (images whose channels are digits: 1000 modes, read by the digit classifier) or
  'images' (feature-space metrics: FID, KID, precision/recall, ...).
  """
  kind: str = "images"
  mode_means: Optional[Callable[[], np.ndarray]] = None  # mixture: the modes' centres
  mode_std: float = 0.0                                  # mixture: each mode's std
  classifier: bool = False  # images: a LeNet domain classifier is trained on it (features, classes)


@dataclasses.dataclass(frozen=True)
class Entry:
  load: Callable[[str], Splits]
  protocol: Protocol = Protocol()


DATASETS: Registry[Entry] = Registry("dataset", "dataset")


def protocol(name: str) -> Protocol:
  return DATASETS.get(name).protocol


def _tfds_loader(name: str, data_dir: str, auto_prepare: bool = False) -> Splits:
  if arrays.exists(name, data_dir):
    return arrays.read(name, data_dir)
  tfds_source.ensure_prepared(name, data_dir, auto_prepare=auto_prepare)
  return {split: tfds_source.read_split(name, split, data_dir) for split in ("train", "test")}


_DIGITS = Protocol("images", classifier=True)
DATASETS.register("mnist5k")(Entry(functools.partial(_tfds_loader, "mnist5k", auto_prepare=True),
                                   _DIGITS))
for _name in ("mnist", "fashion_mnist", "kmnist"):
  DATASETS.register(_name)(Entry(functools.partial(_tfds_loader, _name), _DIGITS))
DATASETS.register("cifar10")(Entry(functools.partial(_tfds_loader, "cifar10")))

# Mode-collapse benchmarks (data/synthetic.py): generated, nothing to prepare; the geometry is
# the VEEGAN protocol's (docs/protocols.md section 1).
from aegan_jax.data import synthetic as _synthetic  # noqa: E402
from aegan_jax.metrics import modes as _modes  # noqa: E402
DATASETS.register("ring")(Entry(_synthetic.load_ring,
                                Protocol("mixture", _modes.ring_means, _modes.RING_STD)))
DATASETS.register("grid")(Entry(_synthetic.load_grid,
                                Protocol("mixture", _modes.grid_means, _modes.GRID_STD)))
DATASETS.register("stacked_mnist")(Entry(_synthetic.load_stacked_mnist, Protocol("stacked")))


@dataclasses.dataclass(frozen=True)
class Spec:
  """What the networks need to know of the data: example shape and value range.

  unit_range: uint8 images scaled to [0, 1] (the generator ends in a sigmoid); otherwise
  real-valued data such as 2-D points (the generator's output is linear).
  """
  shape: tuple[int, ...]
  unit_range: bool = True
  rms_norm: float = 0.0   # real-valued data: sqrt(E ||x||^2) over the training set (0: unknown)


@dataclasses.dataclass
class Dataset:
  """A dataset resident on the device (train split) with its held-out split on the host."""
  name: str
  train: dict[str, jax.Array]        # {'image': uint8 [N, H, W, C] or float32 [N, D], 'label'}
  test_images: np.ndarray            # uint8 [M, H, W, C] (float32 [M, D] for 2-D data)
  test_labels: np.ndarray

  @property
  def image_shape(self) -> tuple[int, ...]:
    return tuple(self.train["image"].shape[1:])

  @functools.cached_property
  def spec(self) -> Spec:
    # Cached: the RMS norm reads the whole training set, and the trainer asks once per member.
    if self.train["image"].dtype == jnp.uint8:
      return Spec(self.image_shape, unit_range=True)
    x = np.asarray(self.train["image"], np.float64).reshape(self.num_train, -1)
    return Spec(self.image_shape, unit_range=False,
                rms_norm=float(np.sqrt(np.mean(np.sum(np.square(x), axis=1)))))

  @property
  def num_train(self) -> int:
    return self.train["image"].shape[0]

  def train_chunks(self, size: int) -> Iterator[jax.Array]:
    """The training images in order, as float32 chunks in [0, 1]."""
    for start in range(0, self.num_train, size):
      yield pipeline.to_float(self.train["image"][start:start + size])


def load(name: str, data_dir: str = "") -> Dataset:
  splits = DATASETS.get(name).load(tfds_source.resolve_data_dir(data_dir))
  (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
  return Dataset(name=name,
                 train={"image": jnp.asarray(train_x), "label": jnp.asarray(train_y)},
                 test_images=test_x, test_labels=test_y)


def check_batch_size(dataset: Dataset, batch_size: int, pack: int = 1) -> None:
  """`pack`: each step draws pack x batch_size examples (PacGAN's packing)."""
  if batch_size * pack > dataset.num_train:
    what = f"--batch_size={batch_size}" + (f" x --pack={pack}" if pack > 1 else "")
    raise UserError(f"{what} exceeds the {dataset.num_train} training examples of "
                    f"{dataset.name!r}; draw at most {dataset.num_train} examples a step")
