"""experiments.train, then each process saves the parameters it holds to
workdir/params_<process index>.npz (for tests of multi-process runs)."""

from absl import flags
import jax
import numpy as np

from aegan_jax import cli, parallel
from aegan_jax import config as config_lib
import experiments.train  # noqa: F401 - defines the training flags


def main(argv):
  parallel.initialize_from_flags()
  from aegan_jax import train
  state = train.train_and_evaluate(config_lib.from_flags(), flags.FLAGS.workdir)
  leaves = jax.tree_util.tree_leaves_with_path(state.params)
  np.savez(f"{flags.FLAGS.workdir}/params_{jax.process_index()}.npz",
           **{jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves})


if __name__ == "__main__":
  cli.run(main)
