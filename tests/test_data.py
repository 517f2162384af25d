"""Datasets through TFDS: the offline default, preparing from local files, on-device batches."""

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import data
from aegan_jax.data import mnist5k as mnist5k_lib
from aegan_jax.data import pipeline
from aegan_jax.errors import UserError
from tests.conftest import run_module

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def test_mnist5k_loads_through_tfds_with_right_shapes_and_labels(mnist5k, data_dir):
  assert mnist5k.image_shape == (28, 28, 1)
  assert mnist5k.num_train == 4500 and len(mnist5k.test_images) == 500
  assert mnist5k.train["image"].dtype == jnp.uint8
  np.testing.assert_array_equal(np.bincount(np.asarray(mnist5k.train["label"])), [450] * 10)
  np.testing.assert_array_equal(np.bincount(mnist5k.test_labels), [50] * 10)
  assert os.path.isdir(os.path.join(data_dir, "mnist5k", "1.0.0"))
  # Labels belong to their images: every record equals the row of the shipped CSV it came from.
  images, labels = mnist5k_lib.read_csv()
  test_rows = [i for i in range(len(labels)) if mnist5k_lib.is_test_row(i)]
  by_bytes = {images[i].tobytes(): labels[i] for i in test_rows}
  for img, lab in zip(mnist5k.test_images, mnist5k.test_labels):
    assert by_bytes[img.tobytes()] == lab


def test_batches_are_an_epoch_permutation_and_reproducible():
  key = jax.random.key(3)
  n, b = 100, 10
  data = {"image": jnp.zeros((n, 1, 1, 1), jnp.uint8), "label": jnp.arange(n)}

  def labels(t):
    return np.asarray(pipeline.batch_at(data, key, jnp.int32(t), b)["label"])

  seen = np.concatenate([labels(t) for t in range(10)])
  np.testing.assert_array_equal(np.sort(seen), np.arange(n))
  np.testing.assert_array_equal(labels(3), seen[30:40])
  assert not np.array_equal(labels(10), seen[:10])


def test_training_path_never_imports_tensorflow(data_dir):
  code = ("import sys; from aegan_jax import data, train; d = data.load('mnist5k'); "
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; print('ok')")
  proc = run_module("tests._run_code", code, data_dir=data_dir, timeout=120)
  assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_unprepared_dataset_fails_fast_with_the_prepare_command(tmp_path):
  start = time.monotonic()
  with pytest.raises(UserError, match=r"not prepared.*python -m scripts.prepare_data "
                                      r"--dataset=mnist"):
    data.load("mnist", str(tmp_path))
  assert time.monotonic() - start < 10
  with pytest.raises(UserError, match="unknown dataset 'mnsit'.*mnist5k"):
    data.load("mnsit", str(tmp_path))


@pytest.mark.skipif(not os.path.isdir(FASHION_DIR),
                    reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")
def test_prepare_fashion_mnist_offline_from_debian_files(tmp_path):
  pytest.importorskip("tensorflow", reason="preparing needs the [prepare] extra")
  data_dir = str(tmp_path / "tfds")
  # Offline: TFDS must be served from the seeded cache; any network use would hang, not pass.
  proc = run_module("scripts.prepare_data", "--dataset=fashion_mnist", f"--data_dir={data_dir}",
                    f"--from_dir={FASHION_DIR}", timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  dataset = data.load("fashion_mnist", data_dir)
  assert dataset.num_train == 60000 and len(dataset.test_images) == 10000
  assert dataset.image_shape == (28, 28, 1)
  np.testing.assert_array_equal(np.bincount(np.asarray(dataset.train["label"])), [6000] * 10)
  # A second call finds it prepared and leaves it alone.
  again = run_module("scripts.prepare_data", "--dataset=fashion_mnist", f"--data_dir={data_dir}",
                     timeout=120)
  assert again.returncode == 0 and "already prepared" in again.stdout


def test_prepare_from_dir_missing_files_is_one_clear_line(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  proc = run_module("scripts.prepare_data", "--dataset=fashion_mnist",
                    f"--data_dir={tmp_path / 'tfds'}", f"--from_dir={empty}", timeout=120)
  assert proc.returncode == 2
  if "needs TensorFlow" not in proc.stderr:
    assert "lacks the original files" in proc.stderr and "train-images-idx3-ubyte.gz" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_without_tfds_only_tfds_datasets_need_it(tmp_path):
  """An image without tensorflow-datasets (the lent GPU machines have none): the generated
  datasets and the benchmark run; a TFDS dataset is a one-line error naming the package."""
  fake = tmp_path / "site" / "tensorflow_datasets"  # shadows the installed package
  fake.mkdir(parents=True)
  (fake / "__init__.py").write_text(
      "raise ModuleNotFoundError(\"No module named 'tensorflow_datasets'\", "
      "name='tensorflow_datasets')\n")
  env = {"PYTHONPATH": str(tmp_path / "site")}
  proc = run_module("experiments.train", f"--workdir={tmp_path / 'grid'}", "--dataset=grid",
                    "--strategy=gan", "--steps=20", "--log_every=10", "--eval_every=0",
                    env=env)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert os.path.exists(tmp_path / "grid" / "summary.json")
  proc = run_module("scripts.benchmark", "--strategy=mlp", "--batch_size=8", "--windows=1",
                    "--window_seconds=0.05", "--warmup_s=0", env=env)
  assert proc.returncode == 0 and '"steps_per_sec"' in proc.stdout, proc.stderr[-2000:]
  # An empty data dir: one holding mnist5k exported as arrays would train without TFDS.
  proc = run_module("experiments.train", f"--workdir={tmp_path / 'mnist5k'}", env=env,
                    data_dir=str(tmp_path / "no_arrays"))
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and "need the tensorflow-datasets package" in errors[0], proc.stderr


def test_exported_arrays_train_and_evaluate_without_tfds(data_dir, mnist5k, tmp_path):
  """prepare_data --export_arrays writes the dataset as .npz; a data dir holding only that file
  and the classifier trains and scores Stacked MNIST where TFDS is not installed (the lent GPU
  machines), and loads the same arrays TFDS gives."""
  import shutil
  proc = run_module("scripts.prepare_data", "--dataset=mnist5k",
                    f"--data_dir={tmp_path / 'tfds'}", "--export_arrays")
  assert proc.returncode == 0 and "exported to" in proc.stdout, proc.stderr[-2000:]
  portable = tmp_path / "portable"
  shutil.copytree(tmp_path / "tfds" / "arrays", portable / "arrays")
  shutil.copytree(os.path.join(data_dir, "aegan_jax"), portable / "aegan_jax")
  loaded = data.load("mnist5k", str(portable))
  np.testing.assert_array_equal(np.asarray(loaded.train["image"]),
                                np.asarray(mnist5k.train["image"]))
  np.testing.assert_array_equal(loaded.test_labels, mnist5k.test_labels)
  assert sorted(os.listdir(portable / "arrays")) == ["mnist5k.npz"]

  fake = tmp_path / "site" / "tensorflow_datasets"  # shadows the installed package
  fake.mkdir(parents=True)
  (fake / "__init__.py").write_text(
      "raise ModuleNotFoundError(\"No module named 'tensorflow_datasets'\", "
      "name='tensorflow_datasets')\n")
  proc = run_module("experiments.train", f"--workdir={tmp_path / 'stacked'}",
                    "--dataset=stacked_mnist", "--strategy=gan", "--arch=mlp",
                    "--mlp_hidden=64", "--steps=20", "--log_every=10", "--eval_every=20",
                    "--eval_metrics=modes", f"--data_dir={portable}",
                    env={"PYTHONPATH": str(tmp_path / "site")})
  assert proc.returncode == 0, proc.stderr[-2000:]
  evaluation = json.loads((tmp_path / "stacked" / "summary.json").read_text())["evaluation"]
  assert evaluation["metrics"]["modes_captured"] >= 1
  assert evaluation["protocol"]["modes"]["classifier"] == "mnist5k"
