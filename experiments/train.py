"""`python -m experiments.train` from the repository root: the training command of
aegan_jax/commands/train.py (installed as the console script `aegan-train`)."""

from aegan_jax.commands import train

if __name__ == "__main__":
  train.entry()
