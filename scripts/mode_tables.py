"""What the mode tables share: the published rows, chance, and the names rows carry."""

import numpy as np

# Published Stacked MNIST rows: (method, modes /1000, KL, source).
PUBLISHED_STACKED = [
    ("DCGAN", 99, 3.40, "VEEGAN Table 2"),
    ("ALI", 16, 5.40, "VEEGAN Table 2"),
    ("Unrolled GAN", 48.7, 4.32, "VEEGAN Table 2"),
    ("VEEGAN", 150, 2.95, "VEEGAN Table 2"),
    ("PacDCGAN2", 1000, 0.06, "PacGAN Table 2"),
    ("RegGAN (MDGAN)", 955, 0.925, "GDPP Table 3"),
    ("WGAN-GP", 995, 0.148, "GDPP Table 3"),
    ("GDPP-GAN", 1000, 0.135, "GDPP Table 3"),
]

# Published 2-D rows: (method, source, ring modes, ring %HQ, ring KL, grid modes, %HQ, KL).
PUBLISHED = [
    ("GAN", "VEEGAN Table 1", 1, 99.3, None, 3.3, 0.5, None),
    ("ALI", "VEEGAN Table 1", 2.8, 0.13, None, 15.8, 1.6, None),
    ("Unrolled GAN", "VEEGAN Table 1", 7.6, 35.6, None, 23.6, 16, None),
    ("VEEGAN", "VEEGAN Table 1", 8, 52.9, None, 24.6, 40, None),
    ("WGAN-GP", "GDPP", 6.8, 59.6, None, 24.2, 28.7, None),
    ("GDPP-GAN", "GDPP", 8.0, 71.7, None, 24.8, 68.5, None),
    ("GAN", "PacGAN Table 1", 6.3, 98.2, 0.45, 17.3, 94.8, 0.70),
    ("ALI", "PacGAN Table 1", 6.6, 97.6, 0.36, 24.1, 95.7, 0.14),
    ("PacGAN2", "PacGAN Table 1", 7.9, 95.6, 0.07, 23.8, 91.3, 0.13),
    ("PacGAN4", "PacGAN Table 1", 7.8, 95.9, 0.07, 24.8, 93.6, 0.04),
]


CHANCE_DRAWS = 5
AT_CHANCE = 3  # a row whose % HQ is below this many times chance's is marked "at chance"


def display_name(entry: str) -> str:
  """The table's name of a strategy entry: mdgan is Che et al.'s regularized GAN."""
  name, bracket, rest = entry.partition("[")
  return ("regularized GAN (mdgan)" if name == "mdgan" else name) + bracket + rest


def chance_rows(dataset: str) -> list[dict]:
  """What CHANCE_DRAWS uniform clouds over the training set's bounding box score."""
  from aegan_jax import data, evaluation
  x = np.asarray(data.load(dataset).train["image"]).reshape(-1, 2)
  return evaluation.chance_modes(dataset, x.min(axis=0), x.max(axis=0), CHANCE_DRAWS)


def is_at_chance(runs: list[dict], chance: list[dict]) -> bool:
  """Whether the runs' mean % HQ is below AT_CHANCE times the chance rows' mean."""
  hq = lambda rows: float(np.mean([r["high_quality_percent"] for r in rows]))
  return hq(runs) < AT_CHANCE * hq(chance)
