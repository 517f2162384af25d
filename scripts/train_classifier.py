"""Train the LeNet classifier of an image dataset, for domain FID/KID/precision-recall features
and Stacked MNIST mode counting:

  python -m scripts.train_classifier --dataset=mnist5k
  python -m scripts.train_classifier --dataset=fashion_mnist --steps=3000 --force

Saves to <TFDS data dir>/aegan_jax/classifiers/<dataset> (where `classifier.load` looks) and
prints a progress line every tenth of the run, then one JSON line with the metadata, held-out
test accuracy included. Evaluation trains it by itself when it is missing; this script is for
choosing its steps or seed, or retraining it (--force).
"""

import json
import time

from absl import flags

from aegan_jax import cli

flags.DEFINE_string("dataset", "mnist5k", "Image dataset to train the classifier on.")
flags.DEFINE_string("data_dir", "", "TFDS data directory; empty = $TFDS_DATA_DIR or "
                    "~/tensorflow_datasets. The classifier is saved under it.")
flags.DEFINE_integer("steps", None, "Training steps; default: 30 epochs, within [500, 2000].")
flags.DEFINE_integer("seed", 0, "Seed of the initialisation, data order and augmentation.")
flags.DEFINE_boolean("force", False, "Overwrite a classifier already saved for the dataset.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from aegan_jax import data as data_lib
  from aegan_jax.features import classifier

  data_lib.DATASETS.get(FLAGS.dataset)  # unknown names fail here, listing the valid ones
  directory = classifier.default_dir(FLAGS.dataset, FLAGS.data_dir)
  if classifier.has_saved(directory) and not FLAGS.force:
    # Checked before training too, so minutes of work are not thrown away at the end.
    raise cli.UserError(f"{directory} already holds a classifier; pass --force to overwrite it")
  start = time.time()
  def progress(step, total, loss):
    print(f"step {step}/{total} ({100 * step // total}%), loss {loss:.3f}, "
          f"{time.time() - start:.0f} s", flush=True)

  params, meta = classifier.train_classifier(FLAGS.dataset, FLAGS.data_dir, steps=FLAGS.steps,
                                             seed=FLAGS.seed, progress=progress)
  meta["train_seconds"] = round(time.time() - start, 1)
  classifier.save(directory, params, meta, force=FLAGS.force)
  print(json.dumps({**meta, "directory": directory}, sort_keys=True))


if __name__ == "__main__":
  cli.run(main)
