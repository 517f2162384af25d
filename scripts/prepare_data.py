"""Prepare a TFDS dataset for training, from the network or from local files (air-gapped).

  python -m scripts.prepare_data --dataset=fashion_mnist                      # online
  python -m scripts.prepare_data --dataset=fashion_mnist \
      --from_dir=/usr/share/datasets/fashion-mnist                           # offline

Offline, the original files (the ones the TFDS builder would download, under their own file
names) are copied into TFDS's download cache under the names TFDS gives them, with the .INFO
record beside each; TFDS then prepares from the cache and never touches the network. Datasets
are written as ArrayRecord, which training reads without TensorFlow. Preparing the image
datasets of the TFDS catalog needs TensorFlow (pip install -e '.[prepare]'); mnist5k does not.

For a machine without TFDS (or TensorFlow), --export_arrays also writes the prepared dataset as
<data_dir>/arrays/<dataset>.npz (aegan_jax/data/arrays.py), which training reads there:

  python -m scripts.prepare_data --dataset=mnist5k --export_arrays
"""

import importlib.util
import os
import shutil

from absl import flags
from absl import logging

from aegan_jax import cli

flags.DEFINE_string("dataset", None, "Dataset to prepare (e.g. mnist, fashion_mnist, cifar10).")
flags.DEFINE_string("data_dir", "", "TFDS data directory; empty = $TFDS_DATA_DIR or "
                    "~/tensorflow_datasets.")
flags.DEFINE_string("from_dir", "", "Folder holding the dataset's original files (offline).")
flags.DEFINE_boolean("overwrite", False, "Prepare again even if already prepared.")
flags.DEFINE_boolean("export_arrays", False, "Also write <data_dir>/arrays/<dataset>.npz, "
                     "which a machine without TFDS reads instead (copy the data dir there).")
flags.mark_flag_as_required("dataset")
FLAGS = flags.FLAGS


def seed_download_cache(name: str, data_dir: str, from_dir: str) -> None:
  """Copies the original files into <data_dir>/downloads under TFDS's cache names."""
  from aegan_jax.data import tfds_source
  tfds = tfds_source.tfds()
  from etils import epath
  from tensorflow_datasets.core.download import resource

  url_infos = getattr(tfds.builder_cls(name), "url_infos", None)
  if not url_infos:
    raise cli.UserError(f"TFDS lists no download files with checksums for {name!r}, so it "
                        f"cannot be prepared from --from_dir; prepare it on a machine with "
                        f"network and copy {data_dir}/{name} here")
  expected = {url: os.path.basename(url.split("?")[0]) for url in url_infos}
  missing = [f for f in expected.values() if not os.path.isfile(os.path.join(from_dir, f))]
  if missing:
    raise cli.UserError(f"--from_dir {from_dir} lacks the original files of {name!r}: "
                        f"{', '.join(missing)}; put them there under these names")
  download_dir = os.path.join(data_dir, "downloads")
  os.makedirs(download_dir, exist_ok=True)
  for url, info in url_infos.items():
    target = epath.Path(download_dir) / resource.get_dl_fname(url, info.checksum)
    shutil.copyfile(os.path.join(from_dir, expected[url]), target)
    resource.write_info_file(url=url, path=target, dataset_name=name,
                             original_fname=expected[url], url_info=info)
    logging.info("Seeded %s -> %s", expected[url], target)


def main(argv):
  del argv
  from aegan_jax import data as data_lib
  from aegan_jax.data import tfds_source

  name = FLAGS.dataset
  data_lib.DATASETS.get(name)  # unknown names fail here, listing the valid ones
  data_dir = tfds_source.resolve_data_dir(FLAGS.data_dir)
  from_dir = os.path.abspath(os.path.expanduser(FLAGS.from_dir)) if FLAGS.from_dir else ""
  if from_dir and not os.path.isdir(from_dir):
    raise cli.UserError(f"--from_dir {from_dir} is not a directory")

  tfds = tfds_source.tfds()
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  if builder.is_prepared() and not FLAGS.overwrite:
    print(f"{name} is already prepared in {builder.data_dir} (--overwrite prepares it again)")
  else:
    prepare(name, builder, data_dir, from_dir)
  if FLAGS.export_arrays:
    from aegan_jax.data import arrays
    splits = {s: tfds_source.read_split(name, s, data_dir) for s in arrays.SPLITS}
    print(f"{name} exported to {arrays.write(name, splits, data_dir)} (train "
          f"{len(splits['train'][1])}, test {len(splits['test'][1])} images)")


def prepare(name: str, builder, data_dir: str, from_dir: str) -> None:
  from aegan_jax.data import tfds_source
  tfds = tfds_source.tfds()
  if name != "mnist5k" and importlib.util.find_spec("tensorflow") is None:
    raise cli.UserError(f"preparing {name!r} needs TensorFlow to encode its images; install it "
                        f"with: pip install -e '.[prepare]' (training itself does not need it)")
  if from_dir:
    seed_download_cache(name, data_dir, from_dir)
  mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if FLAGS.overwrite
          else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  try:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        try_download_gcs=False, download_mode=mode))
  except (OSError, ConnectionError) as e:
    raise cli.UserError(f"could not prepare {name!r} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:160]}); offline, pass --from_dir=DIR with "
                        f"its original files") from None
  print(f"{name} prepared in {builder.data_dir}")


if __name__ == "__main__":
  cli.run(main)
