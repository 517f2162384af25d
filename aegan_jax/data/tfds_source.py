"""Reading prepared TFDS datasets into numpy, without TensorFlow and without the network.

Training reads ArrayRecord files through `tfds.data_source`, which needs neither TensorFlow
(it would also claim GPU memory) nor a network. An unprepared dataset is reported at once:
left to itself, TFDS would retry downloads for minutes on an air-gapped machine. TFDS itself is
imported at first use (`tfds()`), so that the rest of the library - generated datasets, the
benchmarks - also runs where it is not installed (an accelerator image without TensorFlow's
stack, for one).
"""

import importlib
import os

import numpy as np

from aegan_jax.errors import UserError

_CHUNK = 10_000


def tfds():
  """The tensorflow_datasets module, with the project's own builders (mnist5k) registered."""
  try:
    import tensorflow_datasets
  except ModuleNotFoundError as e:
    if e.name != "tensorflow_datasets":  # installed, but something it needs is not: say what
      raise
    raise UserError("TFDS datasets need the tensorflow-datasets package, which is not "
                    "installed; install it with: pip install tensorflow-datasets (the generated "
                    "datasets ring and grid do not need it)") from None
  importlib.import_module("aegan_jax.data.mnist5k")  # defining its builder registers it
  return tensorflow_datasets


def is_prepared(name: str, data_dir: str) -> bool:
  """Whether TFDS holds `name` prepared in data_dir (False where TFDS is not installed)."""
  try:
    module = tfds()
  except UserError:
    return False
  return module.builder(name, data_dir=data_dir).is_prepared()


def resolve_data_dir(data_dir: str) -> str:
  return os.path.expanduser(
      data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def prepare_command(name: str, data_dir: str) -> str:
  return (f"python -m scripts.prepare_data --dataset={name} --data_dir={data_dir} "
          f"[--from_dir=DIR holding the original files, when offline]")


def ensure_prepared(name: str, data_dir: str, auto_prepare: bool = False) -> None:
  """Raises UserError with the prepare command unless `name` is ready to read as ArrayRecord."""
  builder = tfds().builder(name, data_dir=data_dir, file_format="array_record")
  if not builder.is_prepared():
    if auto_prepare:  # local-only builders (mnist5k) prepare themselves in a second
      builder.download_and_prepare()
      return
    raise UserError(f"dataset {name!r} is not prepared in {data_dir}; prepare it with: "
                    f"{prepare_command(name, data_dir)}")
  file_format = str(getattr(builder.info.file_format, "value", builder.info.file_format))
  if file_format != "array_record":
    raise UserError(f"dataset {name!r} in {data_dir} was prepared as {file_format}, and "
                    f"training reads array_record; re-prepare it with: "
                    f"{prepare_command(name, data_dir)} --overwrite")


def read_split(name: str, split: str, data_dir: str, image_key: str = "image",
               label_key: str = "label") -> tuple[np.ndarray, np.ndarray]:
  """A whole split as (uint8 images [N, H, W, C], int32 labels [N])."""
  source = tfds().data_source(name, split=split, data_dir=data_dir)
  images, labels = [], []
  for start in range(0, len(source), _CHUNK):
    records = source.__getitems__(list(range(start, min(start + _CHUNK, len(source)))))
    images.append(np.stack([np.asarray(r[image_key], np.uint8) for r in records]))
    labels.append(np.asarray([r[label_key] for r in records], np.int32))
  return np.concatenate(images), np.concatenate(labels)
