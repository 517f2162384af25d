"""Train a GAN with the help of an autoencoder: `python -m experiments.train --workdir=W`.

Every aegan_jax.config.Config field is a flag; presets are flagfiles that any later flag
overrides:
  python -m experiments.train --workdir=runs/default
  python -m experiments.train --flagfile=experiments/presets/seed.flags --workdir=runs/seed
  python -m experiments.train --strategy=gan --workdir=runs/gan
Running the same command again on a workdir with a checkpoint resumes it.
"""

from absl import flags

from aegan_jax import cli
from aegan_jax import config as config_lib

config_lib.define_flags()
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments {' '.join(argv[1:])}; flags look like --steps=100")
  from aegan_jax import train  # after flag parsing: keeps --help fast
  train.train_and_evaluate(config_lib.from_flags(), flags.FLAGS.workdir)


if __name__ == "__main__":
  cli.run(main)
