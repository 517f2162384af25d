"""aegan_jax: training GANs with the help of autoencoders, in JAX/Flax.

Modules, one concern each:
  config       the run's settings (one frozen dataclass) and their validation
  hyperparameters  a strategy's own flags (default, help, bounds), declared in its module
  errors       UserError: bad input, reported as one line without a traceback
  registry     name -> builder tables (datasets, archs, strategies, losses)
  models/      Flax modules (Encoder, Decoder, Generator, Discriminator) per arch
  losses       reconstruction and adversarial objectives, pure functions of logits
  state        the single pytree TrainState and optimizer helpers
  strategies/  how the networks are trained: phases of jit-compiled pure steps
  data/        TFDS-backed datasets, kept on the device and batched there
  checkpoint   orbax CheckpointManager with configuration guard
  writers      metrics.jsonl, TensorBoard and PNG image grids
  train        train_and_evaluate(config, workdir): the loop that ties them together
  model        load(workdir): a trained model from Python (sample, interpolate, reconstruct)
  cpu/         CPU speed-ups switched on by cpu.enable() (the entry points call it):
               malloc keeps freed memory; threefry unrolled
"""

__version__ = "0.1.0"


def load(workdir: str, step=None):
  """A trained model from a workdir, without reading its dataset (aegan_jax/model.py):
  `.sample(n, seed=0)`, `.sample(z=...)`, `.latents(n)`, `.interpolate(z0, z1)`,
  `.reconstruct(x)`."""
  from aegan_jax import model  # imported on use: `import aegan_jax` stays light
  return model.load(workdir, step)
