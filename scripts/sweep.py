"""`python -m scripts.sweep` from the repository root: the sweep command of
aegan_jax/commands/sweep.py (installed as the console script `aegan-sweep`)."""

from aegan_jax.commands import sweep

if __name__ == "__main__":
  sweep.entry()
