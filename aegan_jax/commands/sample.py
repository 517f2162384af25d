"""Export generated samples: `aegan-sample --workdir=W --num=N --out=F.npy` (or `python -m
scripts.sample ...` from the repository root).

Writes N samples from the workdir's latest checkpoint as a float32 array shaped like the
dataset's examples, [N, H, W, C], in the dataset's value range [0, 1].
"""

import os

from absl import flags
from absl import logging

from aegan_jax import cli

flags.DEFINE_string("workdir", None, "Workdir of a training run.")
flags.DEFINE_integer("num", 1000, "Number of samples.")
flags.DEFINE_string("out", None, "Output .npy path.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.mark_flags_as_required(["workdir", "out"])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if FLAGS.num <= 0:
    raise cli.UserError(f"--num must be a positive integer, got {FLAGS.num}")
  if not FLAGS.out.endswith(".npy"):
    raise cli.UserError(f"--out must name a .npy file, got {FLAGS.out}")
  import numpy as np
  from aegan_jax import evaluation, train

  _, strategy, state, _ = train.load_for_sampling(FLAGS.workdir, FLAGS.step)
  samples = evaluation.sample(strategy, state, FLAGS.num, FLAGS.seed).astype(np.float32)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  np.save(FLAGS.out, samples)
  logging.info("Wrote %s samples %s to %s", samples.shape[0], samples.shape, FLAGS.out)


def entry() -> None:
  """The console script `aegan-sample`; also `python -m scripts.sample` (repository root) and
  `python -m aegan_jax.commands.sample`."""
  cli.run(main, __name__)


if __name__ == "__main__":
  entry()
