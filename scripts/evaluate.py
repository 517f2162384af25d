"""`python -m scripts.evaluate` from the repository root: the evaluation command of
aegan_jax/commands/evaluate.py (installed as the console script `aegan-evaluate`)."""

from aegan_jax.commands import evaluate

if __name__ == "__main__":
  evaluate.entry()
