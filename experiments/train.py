"""Train a GAN with the help of an autoencoder: `python -m experiments.train --workdir=W`.

Every aegan_jax.config.Config field is a flag; presets are flagfiles that any later flag
overrides:
  python -m experiments.train --workdir=runs/default
  python -m experiments.train --flagfile=experiments/presets/seed.flags --workdir=runs/seed
  python -m experiments.train --strategy=gan --workdir=runs/gan
Running the same command again on a workdir with a checkpoint resumes it. The batch is split
over every visible device; several processes (hosts) join with --coordinator_address
--num_processes --process_id (or scripts.launch_local on one machine). --population=K trains K
runs in one program, in W/member_00 ... W/member_{K-1}.
"""

from absl import flags

from aegan_jax import cli
from aegan_jax import config as config_lib
from aegan_jax import parallel

config_lib.define_flags()
parallel.define_flags()
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
flags.DEFINE_integer("population", 1, "Train K independent runs in one program (jax.vmap over "
                     "their states): seeds seed..seed+K-1, outputs in workdir/member_NN.")
flags.DEFINE_string("population_vary", "", "Per-member values of seed or float fields, one per "
                    "member: 'g_lr=1e-4,2e-4,4e-4,8e-4;d_lr=...'.")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments {' '.join(argv[1:])}; flags look like --steps=100")
  parallel.initialize_from_flags()  # before anything touches a device
  from aegan_jax import train  # after flag parsing: keeps --help fast
  f = flags.FLAGS
  config = config_lib.from_flags()
  if f.population == 1 and not f.population_vary:
    train.train_and_evaluate(config, f.workdir)
  else:
    train.train_members(config, f.workdir, f.population, f.population_vary)


if __name__ == "__main__":
  cli.run(main)
