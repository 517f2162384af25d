"""The dataset classifier: LeNet shapes, a short real training on mnist5k, storage, Stacked MNIST.

One short training (100 steps of 64 on mnist5k, a few seconds) is shared by the tests through
a module fixture; the accuracy targets of the default settings (98% on mnist5k, 90% on
Fashion-MNIST) are measured outside the suite with scripts/train_classifier.py.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax.errors import UserError
from aegan_jax.features import classifier
from tests.conftest import run_module


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_lenet_shapes(shape):
  module = classifier.LeNet(num_classes=10)
  x = jnp.zeros((3, *shape), jnp.float32)
  variables = jax.eval_shape(module.init, jax.random.key(0), x)
  features, logits = jax.eval_shape(module.apply, variables, x)
  assert features.shape == (3, classifier.FEATURE_DIM) == (3, 128)
  assert logits.shape == (3, 10)


def _warp(images, angle=0.0, scale=1.0, shift=(0.0, 0.0)):
  n = images.shape[0]
  return np.asarray(classifier.warp(jnp.asarray(images), jnp.full((n,), angle),
                                    jnp.full((n,), scale), jnp.tile(jnp.asarray(shift), (n, 1))))


def test_warp_moves_images_as_documented():
  images = np.asarray(jax.random.uniform(jax.random.key(0), (2, 8, 8, 2)))
  np.testing.assert_array_equal(_warp(images), images)
  moved = np.zeros_like(images)            # down 1, left 2, zero-filled
  moved[:, 1:, :6] = images[:, :7, 2:]
  np.testing.assert_array_equal(_warp(images, shift=(1.0, -2.0)), moved)
  np.testing.assert_allclose(_warp(images, angle=np.pi / 2), np.rot90(images, 1, axes=(1, 2)),
                             atol=1e-5)
  augmented = np.asarray(classifier.augment(jax.random.key(1), jnp.asarray(images)))
  assert augmented.shape == images.shape and not np.array_equal(augmented, images)


@pytest.fixture(scope="module")
def trained(data_dir):
  """(params, meta) of a short mnist5k training, augmented as the default run is."""
  return classifier.train_classifier("mnist5k", data_dir, steps=100, batch_size=64, seed=0,
                                     augmented=True)


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
  params, meta = trained
  directory = str(tmp_path_factory.mktemp("classifier"))
  classifier.save(directory, params, meta)
  return directory


def test_short_training_beats_80_percent_held_out(trained, mnist5k):
  _, meta = trained
  assert meta["test_accuracy"] > 0.8, meta
  assert meta["num_test"] == len(mnist5k.test_labels) == 500
  assert meta["num_train"] == mnist5k.num_train
  assert {k: meta[k] for k in ("dataset", "steps", "feature_dim", "arch", "split")} == {
      "dataset": "mnist5k", "steps": 100, "feature_dim": 128, "arch": "lenet", "split": "test"}


def test_save_load_round_trip_gives_identical_outputs(trained, saved, mnist5k):
  params, meta = trained
  images = mnist5k.test_images[:37].astype(np.float32) / 255.0
  fresh = classifier.Classifier(classifier.LeNet(num_classes=10), params, meta)
  loaded = classifier.load("mnist5k", directory=saved)
  assert loaded.meta == meta
  np.testing.assert_array_equal(loaded.logits(images), fresh.logits(images))
  features = loaded.features(jnp.asarray(images))
  assert features.shape == (37, 128) and isinstance(features, np.ndarray)
  np.testing.assert_array_equal(features, fresh.features(images))


def test_save_overwrites_only_with_force(trained, saved):
  params, meta = trained
  with pytest.raises(UserError, match="--force"):
    classifier.save(saved, params, meta)
  classifier.save(saved, params, {**meta, "steps": 7}, force=True)
  assert classifier.load("mnist5k", directory=saved).meta["steps"] == 7
  classifier.save(saved, params, meta, force=True)  # as it was, for the other tests


def test_ensure_trains_once_and_keeps_a_classifier_saved_meanwhile(trained, data_dir, tmp_path,
                                                                    monkeypatch):
  params, meta = trained
  fresh = str(tmp_path / "data")
  calls, lines = [], []

  def train_while_another_process_saves(dataset, data_dir, steps, progress):
    calls.append(steps)
    progress(steps, steps, 0.5)
    # The other process: it finished first, with its own (here: marked) classifier.
    classifier.save(classifier.default_dir(dataset, data_dir), params, {**meta, "seed": 99})
    return params, meta

  monkeypatch.setattr(classifier, "train_classifier", train_while_another_process_saves)
  got = classifier.ensure("mnist5k", fresh, steps=5, log=lines.append)
  assert calls == [5] and got.meta["seed"] == 99  # theirs is kept, ours discarded
  assert any("training one" in l for l in lines) and any("meanwhile" in l for l in lines)
  assert any("classifier 5/5 steps" in l for l in lines)
  parent = os.path.dirname(classifier.default_dir("mnist5k", fresh))
  assert os.listdir(parent) == ["mnist5k"]  # no temporary folder left behind
  again = classifier.ensure("mnist5k", fresh, log=lines.append)  # cached: no training
  assert calls == [5] and again.meta["seed"] == 99


def test_missing_classifier_names_the_train_command(tmp_path):
  with pytest.raises(UserError) as e:
    classifier.load("mnist5k", data_dir=str(tmp_path))
  message = str(e.value)
  assert "python -m scripts.train_classifier --dataset=mnist5k" in message
  assert classifier.default_dir("mnist5k", str(tmp_path)) in message
  assert classifier.default_dir("mnist5k", str(tmp_path)) == os.path.join(
      str(tmp_path), "aegan_jax", "classifiers", "mnist5k")


def test_classify_channels_reads_each_digit(saved, mnist5k):
  clf = classifier.load("mnist5k", directory=saved)
  digits = mnist5k.test_images[:6].astype(np.float32) / 255.0     # [6, 28, 28, 1]
  per_digit = clf.logits(digits).argmax(axis=1)
  # Two stacked images: digits (0, 1, 2) and (3, 4, 5) as channels (R, G, B).
  stacked = np.stack([np.concatenate(list(digits[3 * i:3 * i + 3]), axis=-1) for i in range(2)])
  expected = [100 * per_digit[3 * i] + 10 * per_digit[3 * i + 1] + per_digit[3 * i + 2]
              for i in range(2)]
  np.testing.assert_array_equal(classifier.classify_channels(clf, stacked), expected)


def test_two_dimensional_dataset_is_refused(data_dir):
  with pytest.raises(UserError, match="image datasets"):
    classifier.train_classifier("ring", data_dir, steps=1)


def test_script_reports_user_errors(data_dir):
  result = run_module("scripts.train_classifier", "--dataset=nope", data_dir=data_dir)
  assert result.returncode == 2, result.stderr
  assert result.stderr.startswith("error: unknown dataset 'nope'"), result.stderr
