"""Train a GAN with the help of an autoencoder: `aegan-train --workdir=W` (installed), or
`python -m experiments.train --workdir=W` from the repository root (where the presets are).

Every aegan_jax.config.Config field is a flag; presets are flagfiles that any later flag
overrides:
  python -m experiments.train --workdir=runs/default
  python -m experiments.train --flagfile=experiments/presets/seed.flags --workdir=runs/seed
  python -m experiments.train --strategy=gan --workdir=runs/gan
--print_config prints the resolved configuration, --dry_run builds and compiles one step;
neither writes anything. Running the same command again on a workdir with a checkpoint resumes
it. The batch is split over every visible device; several processes (hosts) join with
--coordinator_address --num_processes --process_id (or scripts.launch_local on one machine). --population=K trains K
runs in one program, in W/member_00 ... W/member_{K-1}.
"""

import json

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
flags.DEFINE_boolean("print_config", False, "Print the resolved configuration (presets and "
                     "overrides applied) as JSON and exit; writes nothing.")
flags.DEFINE_boolean("dry_run", False, "Validate the flags, load the data, build the networks and "
                     "compile one training step, print what was built as JSON, and exit; "
                     "writes nothing.")



def _flag_help() -> str:
  from aegan_jax import data, losses, models, strategies
  choices = {"strategy": strategies.STRATEGIES.names(), "dataset": data.DATASETS.names(),
             "arch": models.ARCHS.names(), "loss": losses.ADVERSARIAL.names()}
  return cli.grouped_flag_help(choices, {  # this command's own flags follow, absl's listing
      "Several processes (hosts)": ["coordinator_address", "num_processes", "process_id"]})


# absl's --help prints the main module's docstring, then its own flags: the experiment's flags
# go in the docstring, grouped by concern (--helpfull still lists every flag, absl's way).
__doc__ += "\nFlags (--helpfull lists absl's too):\n" + _flag_help()


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments {' '.join(argv[1:])}; flags look like --steps=100")
  parallel.initialize_from_flags()  # before anything touches a device
  f = flags.FLAGS
  config = config_lib.from_flags()
  if f.print_config:
    print(config_lib.dumps(config_lib.validate(config)))
    return
  from aegan_jax import train  # after flag parsing: keeps --help fast
  if f.dry_run:
    print(json.dumps(train.dry_run(config), indent=1))
    return
  if not f.workdir:
    raise cli.UserError("--workdir is required: the folder for checkpoints, metrics and "
                        "samples, e.g. --workdir=runs/default")
  if f.population == 1 and not f.population_vary:
    train.train_and_evaluate(config, f.workdir)
  else:
    train.train_members(config, f.workdir, f.population, f.population_vary)


def entry() -> None:
  """The console script `aegan-train`; also `python -m experiments.train` (repository root) and
  `python -m aegan_jax.commands.train`."""
  cli.run(main, __name__)


if __name__ == "__main__":
  entry()
