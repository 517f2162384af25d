"""Explore a trained model from Python: samples, a walk through the noise, reconstructions.

  python docs/examples/explore_a_model.py runs/default [out_dir]

Writes out_dir/samples.png (64 samples), out_dir/interpolation.png (8 walks of 10 steps between
two noise vectors each) and, where the strategy has an autoencoder, out_dir/reconstruction.png
(generated samples in the top row, their reconstructions below). Images only: a 2-D run has no
pictures of this kind (use the trainer's scatter plots).
"""

import os
import sys

import numpy as np

import aegan_jax
from aegan_jax import writers


def main(workdir: str, out_dir: str) -> None:
  model = aegan_jax.load(workdir)
  if len(model.image_shape) != 3:
    sys.exit(f"{workdir} holds a model of {model.image_shape}-shaped points, not images")
  os.makedirs(out_dir, exist_ok=True)
  name = f"{model.config.strategy} on {model.config.dataset}, step {model.step}"

  samples = model.sample(64, seed=0)
  writers.save_png(os.path.join(out_dir, "samples.png"), writers.image_grid(samples, rows=8),
                   caption=f"{name}: 64 samples")

  z = model.latents(16, seed=1)
  walks = np.concatenate([model.interpolate(z[2 * i], z[2 * i + 1], num=10) for i in range(8)])
  writers.save_png(os.path.join(out_dir, "interpolation.png"), writers.image_grid(walks, rows=8),
                   caption=f"{name}: each row walks the noise from one sample to another")

  if model.strategy.has_autoencoder:
    again = model.reconstruct(samples[:10])
    writers.save_png(os.path.join(out_dir, "reconstruction.png"),
                     writers.image_grid(np.concatenate([samples[:10], again]), rows=2),
                     caption=f"{name}: samples (top) and their reconstructions (bottom)")
  print(f"wrote {out_dir}")


if __name__ == "__main__":
  if len(sys.argv) not in (2, 3):
    sys.exit(__doc__)
  main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else os.path.join(sys.argv[1], "explore"))
