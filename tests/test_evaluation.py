"""Evaluation wiring: which metric fits which data, the evaluate script, the mode benchmark."""

import json
import os

import numpy as np
import pytest

from aegan_jax import data, evaluation
from aegan_jax.errors import UserError
from tests.conftest import run_cases, run_module


@pytest.mark.parametrize("metrics,dataset,message", [
    ("modes", "cifar10", "modes fits ring, grid, stacked_mnist"),
    ("fid", "ring", "fid measures images; 'ring' is 2-D points"),
    ("fid,precision", "mnist5k", "unknown metric 'precision'"),
    ("kid", "cifar10", "kid on 'cifar10' needs --inception_weights"),
])
def test_unfit_metrics_are_refused(metrics, dataset, message, tmp_path):
  with pytest.raises(UserError, match=message):
    evaluation.resolve_metrics(metrics, dataset, str(tmp_path), "")


def test_auto_metrics_fit_the_data(tmp_path):
  assert evaluation.resolve_metrics("auto", "grid", str(tmp_path), "")[0] == ["modes"]
  # No classifier saved yet: still every image metric (it is trained when first needed),
  # cheap ones during training, everything after.
  metrics, note = evaluation.resolve_metrics("auto", "mnist5k", str(tmp_path), "")
  assert metrics == ["fid", "kid", "pr", "dc", "classes"] and not note
  assert evaluation.resolve_metrics("auto", "mnist5k", str(tmp_path), "",
                                    during_training=True)[0] == ["fid"]
  with pytest.raises(UserError, match="classes counts the samples of each class"):
    evaluation.resolve_metrics("classes", "cifar10", str(tmp_path), "x.npz")


def test_class_counts():
  logits = np.eye(4)[[0, 0, 1, 3, 3, 3]]
  assert evaluation.class_counts(logits).tolist() == [2, 1, 0, 3]


def test_evaluate_trains_the_missing_classifier_once(tiny, tmp_path):
  from aegan_jax import train
  from aegan_jax.data import tfds_source
  fresh = str(tmp_path / "tfds")  # a data dir with no classifier in it
  tfds_source.ensure_prepared("mnist5k", fresh, auto_prepare=True)
  workdir = str(tmp_path / "digits")
  train.train_and_evaluate(tiny(data_dir=fresh), workdir)
  args = (f"--workdir={workdir}", "--classifier_steps=20", "--num_samples=1000")
  first = run_module("scripts.evaluate", *args, data_dir=fresh)
  assert first.returncode == 0, first.stderr[-3000:]
  assert "training one" in first.stderr and "held-out accuracy" in first.stderr
  assert "classifier 20/20 steps" in first.stderr
  record = json.load(open(os.path.join(workdir, "eval.json")))
  assert {"fid_lenet", "kid_lenet", "precision_lenet", "recall_lenet", "density_lenet",
          "coverage_lenet", "min_class_share"} <= set(record["metrics"])
  assert all(np.isfinite(v) for v in record["metrics"].values())
  assert sum(record["protocol"]["classes"]["counts"]) == 1000
  meta = os.path.join(fresh, "aegan_jax", "classifiers", "mnist5k", "meta.json")
  assert json.load(open(meta))["steps"] == 20
  stamp = os.stat(meta).st_mtime_ns
  second = run_module("scripts.evaluate", *args, data_dir=fresh)
  assert second.returncode == 0, second.stderr[-3000:]
  assert "training one" not in second.stderr and os.stat(meta).st_mtime_ns == stamp
  assert json.load(open(os.path.join(workdir, "eval.json")))["metrics"] == record["metrics"]


def test_training_ends_with_the_full_evaluation_in_its_summary(tiny, tmp_path):
  from aegan_jax import train
  workdir = str(tmp_path / "digits")
  train.train_and_evaluate(tiny(eval_every=10, eval_samples=1000), workdir)
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  evals = {r["step"]: set(r) - {"step", "phase"} for r in rows if r["phase"] == "eval"}
  assert evals[30] == {"fid_lenet"}  # periodic: cheap
  assert {"fid_lenet", "kid_lenet", "recall_lenet", "coverage_lenet",
          "min_class_share"} <= evals[40]
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["evaluation"]["step"] == 40
  assert sum(summary["evaluation"]["protocol"]["classes"]["counts"]) == 1000
  assert summary["final"]["eval/recall_lenet"] == summary["evaluation"]["metrics"]["recall_lenet"]
  # Reopening the finished run keeps its evaluation in the summary.
  train.train_and_evaluate(tiny(eval_every=10, eval_samples=1000), workdir)
  assert json.load(open(os.path.join(workdir, "summary.json")))["evaluation"] == summary["evaluation"]


def test_mixture_modes_on_exact_means():
  means = data.protocol("grid").mode_means()
  samples = np.repeat(means, 100, axis=0)
  r = evaluation.mixture_modes("grid", samples)
  assert r["modes_captured"] == 25 and r["high_quality_percent"] == pytest.approx(100.0)
  assert r["reverse_kl"] == pytest.approx(0.0, abs=1e-9)
  assert r["protocol"]["samples"] == 2500


def test_train_then_evaluate_ring(data_dir, tmp_path):
  workdir = str(tmp_path / "ring")
  proc = run_module("experiments.train", f"--workdir={workdir}", "--dataset=ring",
                    "--strategy=ae_pretrain", "--mlp_hidden=32,32", "--latent_dim=4",
                    "--code_dim=4", "--batch_size=128", "--pretrain_steps=100", "--steps=200",
                    "--eval_every=100", "--log_every=100", data_dir=data_dir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  evals = [r for r in records if r["phase"] == "eval"]
  assert [r["step"] for r in evals] == [200, 300]  # adversarial steps only, and the end
  assert all(0 <= r["modes_captured"] <= 8 for r in evals)
  assert os.path.exists(os.path.join(workdir, "samples", "final.png"))

  proc = run_module("scripts.evaluate", f"--workdir={workdir}", data_dir=data_dir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.load(open(os.path.join(workdir, "eval.json")))
  assert record["step"] == 300 and record["protocol"]["modes"]["samples"] == 2500
  assert set(record["metrics"]) == {"modes_captured", "high_quality_percent", "reverse_kl"}
  for picture in ("curves.png", "samples_scatter.png"):
    assert os.path.getsize(os.path.join(workdir, picture)) > 1000

  bad = run_module("scripts.evaluate", f"--workdir={workdir}", "--metrics=fid",
                   data_dir=data_dir)
  assert bad.returncode == 2 and "fid measures images" in bad.stderr
  assert "Traceback" not in bad.stderr


def test_benchmark_modes_writes_the_table(data_dir, tmp_path):
  out = tmp_path / "modes.md"
  args = [f"--root={tmp_path / 'runs'}", f"--out={out}", "--datasets=ring",
          "--strategies=gan,ae_pretrain[code_components=2;code_mapping=gaussian]", "--seeds=2", "--mlp_hidden=16", "--latent_dim=2",
          "--code_dim=2", "--batch_size=64", "--steps=60", "--pretrain_steps=30",
          "--eval_every=0", "--log_every=30"]
  proc = run_module("scripts.benchmark_modes", *args, data_dir=data_dir, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  text = out.read_text()
  assert "python -m scripts.benchmark_modes" in text and "--seeds=2" in text
  ours = [l for l in text.splitlines() if "(ours)" in l]
  assert len(ours) == 2 and all("±" in l for l in ours)
  assert "**ae_pretrain[code_components=2;code_mapping=gaussian]** (ours)" in text
  assert "| VEEGAN | VEEGAN Table 1 |" in text and "PacGAN4" in text
  chance = [l for l in text.splitlines() if l.startswith("| uniform cloud")]
  assert len(chance) == 1 and "±" in chance[0] and "at chance" not in chance[0]
  # Per-seed results are kept; a second invocation reuses them instead of retraining.
  results = sorted((tmp_path / "runs").glob("*/eval_modes.json"))
  assert len(results) == 4
  stamp = [p.stat().st_mtime_ns for p in results]
  again = run_module("scripts.benchmark_modes", *args, data_dir=data_dir, timeout=600)
  assert again.returncode == 0 and [p.stat().st_mtime_ns for p in results] == stamp
  saved = json.loads(next(p for p in results if "components" in str(p)).read_text())
  assert saved["config"]["code_components"] == 2 and saved["config"]["code_mapping"] == "gaussian"
  bad = run_module("scripts.benchmark_modes", *args[:3], "--strategies=gan[stepz=3]",
                   data_dir=data_dir)
  assert bad.returncode == 2 and "'stepz=3' is not flag=value with a train flag" in bad.stderr


def test_evaluate_bad_inputs_are_one_line(tiny, data_dir, tmp_path):
  from aegan_jax import train
  workdir = str(tmp_path / "digits")
  train.train_and_evaluate(tiny(eval_every=0), workdir)
  cases = [
      (["--metrics=fid", f"--inception_weights={tmp_path / 'missing.npz'}"], "missing.npz"),
      (["--metrics=kid", "--num_samples=500", "--inception_weights=x.npz"],
       "kid uses subsets of 1000 samples, more than the 500 asked for"),
      (["--metrics=modes"], "modes fits ring, grid, stacked_mnist"),
      (["--num_samples=0"], "--num_samples must be a positive integer"),
  ]
  *procs, empty = run_cases("scripts.evaluate", [[f"--workdir={workdir}", *flags]
                                                  for flags, _ in cases]
                            + [[f"--workdir={tmp_path / 'nothing'}"]], data_dir=data_dir)
  for (flags, message), proc in zip(cases, procs):
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
  assert empty.returncode == 2 and "holds no checkpoints" in empty.stderr


def test_a_new_metric_is_one_function_and_one_registry_line():
  """A metric registered for 2-D points is accepted by --eval_metrics and measured beside
  'modes', from the same draw of samples."""
  import types
  from aegan_jax.evaluation import METRICS, Metric
  seen = {}

  def spread(m):
    seen["modes_draw"] = m.samples(evaluation.VEEGAN_SAMPLES)
    return {"spread": float(np.std(seen["modes_draw"]))}, {"spread": {"what": "std"}}

  METRICS.register("spread")(Metric(("mixture",), spread, features=False))
  try:
    assert evaluation.resolve_metrics("modes,spread", "grid", "", "")[0] == ["modes", "spread"]
    with pytest.raises(UserError, match="--eval_metrics=spread fits ring, grid, not 'mnist5k'"):
      evaluation.resolve_metrics("spread", "mnist5k", "", "")
    means = data.protocol("grid").mode_means()
    draws = []

    def generate(state, key, n):
      draws.append(n)
      return np.repeat(means, n // len(means), axis=0)
    strategy = types.SimpleNamespace(generate=generate)
    grid = types.SimpleNamespace(name="grid")
    scalars, protocol = evaluation.Evaluator(grid, ["modes", "spread"], "", 100)(strategy, None)
  finally:
    METRICS._entries.pop("spread")
  assert scalars["modes_captured"] == 25
  assert scalars["spread"] == pytest.approx(float(np.std(means)), rel=1e-6)
  assert protocol["spread"] == {"what": "std"} and draws == [evaluation.VEEGAN_SAMPLES]
