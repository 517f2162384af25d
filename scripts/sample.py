"""`python -m scripts.sample` from the repository root: the sampling command of
aegan_jax/commands/sample.py (installed as the console script `aegan-sample`)."""

from aegan_jax.commands import sample

if __name__ == "__main__":
  sample.entry()
