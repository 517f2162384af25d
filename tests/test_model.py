"""aegan_jax.load: a trained model from Python, without reading the dataset."""

import os

import numpy as np
import pytest

import aegan_jax
from aegan_jax import data, train
from aegan_jax.errors import UserError


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
  from aegan_jax.config import Config
  workdir = str(tmp_path_factory.mktemp("model"))
  config = Config(dataset="mnist5k", data_dir=data_dir, steps=20, pretrain_steps=20,
                  batch_size=32, mlp_hidden=(64,), log_every=10, sample_every=20,
                  checkpoint_every=20, eval_every=0, code_components=2)
  train.train_and_evaluate(config, workdir)
  return workdir


def test_load_samples_without_reading_the_dataset(trained, monkeypatch):
  assert os.path.exists(os.path.join(trained, "spec.json"))
  monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("the dataset was read"))
  model = aegan_jax.load(trained)
  assert model.step == 40 and model.image_shape == (28, 28, 1)

  images = model.sample(5, seed=3)
  assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
  assert 0.0 <= images.min() and images.max() <= 1.0
  np.testing.assert_array_equal(images, model.sample(5, seed=3))  # a seed is a sample
  assert not np.allclose(images, model.sample(5, seed=4))

  z = model.latents(5, seed=3)
  np.testing.assert_array_equal(model.sample(z=z, seed=3), images)  # the same noise, same images
  path = model.interpolate(z[0], z[1], num=4)
  assert path.shape == (4, 28, 28, 1)
  np.testing.assert_allclose(path[0], images[0], atol=1e-5)
  np.testing.assert_allclose(path[-1], images[1], atol=1e-5)
  assert not np.allclose(path[1], path[0])  # the middle moves

  x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
  assert model.reconstruct(x).shape == (3, 28, 28, 1)


def test_bad_inputs_are_one_line(trained, tmp_path):
  model = aegan_jax.load(trained)
  with pytest.raises(UserError, match="this model's noise is"):
    model.sample(z=np.zeros((2, 3)))
  with pytest.raises(UserError, match="this model reconstructs"):
    model.reconstruct(np.zeros((2, 8, 8, 1)))
  with pytest.raises(UserError, match="holds no checkpoints"):
    aegan_jax.load(str(tmp_path))


def test_the_docs_example_runs(trained, tmp_path):
  import subprocess
  import sys
  from tests.conftest import REPO
  out = tmp_path / "explore"
  proc = subprocess.run([sys.executable, os.path.join(REPO, "docs", "examples",
                                                      "explore_a_model.py"), trained, str(out)],
                        capture_output=True, text=True, timeout=120,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 0, proc.stderr[-2000:]
  for name in ("samples.png", "interpolation.png", "reconstruction.png"):
    assert (out / name).stat().st_size > 1000
