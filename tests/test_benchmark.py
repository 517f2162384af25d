"""scripts.benchmark on a tiny setting: its JSON lines say what was run and hold together.

The figures depend on the machine; what is checked is the configuration each line reports,
that the rates are real numbers, and that the derived figures are what their inputs give.
"""

import importlib.util
import json

import pytest

from tests.conftest import run_cases, run_module

TINY = ["--windows=2", "--window_seconds=0.05", "--warmup_s=0"]


def _records(proc):
  assert proc.returncode == 0, proc.stderr[-3000:]
  return [json.loads(line) for line in proc.stdout.strip().splitlines()]


def test_one_line_per_configuration():
  rows = _records(run_module("scripts.benchmark", "--strategy=mlp", "--batch_size=8",
                             "--steps_per_call=1,2", *TINY))
  assert [(r["workload"], r["batch_size"], r["steps_per_call"]) for r in rows] == [
      ("mlp", 8, 1), ("mlp", 8, 2)]
  for r in rows:
    assert r["framework"].startswith("jax ") and r["platform"] == "cpu"
    assert r["device_count"] >= 1 and r["dtype"] == "float32"
    assert len(r["window_steps_per_sec"]) == 2 and all(w > 0 for w in r["window_steps_per_sec"])
    assert sorted(r["window_steps_per_sec"])[0] <= r["steps_per_sec"]
    assert r["images_per_sec"] == pytest.approx(r["steps_per_sec"] * 8, rel=1e-3, abs=0.1)
    assert r["compile_s"] > 0 and r["peak_memory_bytes"] > 0
    assert 0 <= r["page_faults_per_step"] < 100  # small buffers, reused: next to none
    # The seed's networks at batch 8: each dense layer's matmul is 2 * 8 * in * out FLOPs, and
    # a step runs D forward (real, fake, fake again) and backward, G forward and backward.
    d, g = 784 * 128 + 128, 64 * 64 + 64 * 128 + 128 * 784
    assert 2 * 8 * (3 * d + g) < r["flops_per_step"] < 2 * 8 * 10 * (d + g)
    assert r["achieved_tflops"] == pytest.approx(
        r["flops_per_step"] * r["steps_per_sec"] / 1e12, rel=1e-2, abs=1e-4)
    assert r["peak_fraction"] is None  # no known peak for a CPU


BAD_FLAGS = [
    ("--strategy=resnet", "unknown --strategy 'resnet'; choose from reference, dcgan, mlp"),
    ("--batch_size=0", "--batch_size must be positive integers, got 0"),
    ("--dtype=float16", "unknown --dtype 'float16'"),
]


def test_bad_flags_are_one_line_errors():
  procs = run_cases("scripts.benchmark", [[flag, *TINY] for flag, _ in BAD_FLAGS])
  for (flag, message), proc in zip(BAD_FLAGS, procs):
    assert proc.returncode == 2, (flag, proc.stderr[-2000:])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not proc.stdout.strip(), flag


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
def test_torch_runs_the_same_workload_beside():
  rows = _records(run_module("scripts.benchmark", "--strategy=mlp", "--batch_size=8", "--torch",
                             *TINY))
  ours, theirs = rows
  assert theirs["framework"].startswith("torch ") and theirs["batch_size"] == 8
  assert theirs["workload"] == "mlp" and theirs["steps_per_sec"] > 0
  assert ours["torch_steps_per_sec"] == theirs["steps_per_sec"]
  assert ours["speedup_vs_torch"] == pytest.approx(
      ours["steps_per_sec"] / theirs["steps_per_sec"], rel=1e-2)


def test_matmul_pieces_report_their_rate():
  rows = _records(run_module("scripts.benchmark_matmul", "--batch_size=8", "--repeats=2"))
  assert [(r["layer"], r["piece"]) for r in rows] == [
      (layer, piece) for layer in ("D.Dense_0", "G.decoder.Dense_1")
      for piece in ("forward", "input_grad", "kernel_grad")]
  for r in rows:
    assert r["framework"].startswith("jax ") and r["batch_size"] == 8 and r["cores"] >= 1
    assert r["us"] > 0  # a rate is the FLOPs of an 8 x 784 x 128 product over that time
    assert r["gflops"] == pytest.approx(2 * 8 * 784 * 128 / r["us"] / 1e3, rel=2e-2, abs=0.1)


def test_matmul_bad_batch_is_a_one_line_error():
  proc = run_module("scripts.benchmark_matmul", "--batch_size=8,x")
  assert proc.returncode == 2 and not proc.stdout.strip(), proc.stderr[-2000:]
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
  assert errors == ["error: --batch_size and --repeats must be positive integers"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
def test_matmul_torch_times_the_same_pieces_beside():
  rows = _records(run_module("scripts.benchmark_matmul", "--batch_size=8", "--repeats=2",
                             "--torch"))
  ours, theirs = rows[:6], rows[6:]
  assert [r["framework"].split()[0] for r in rows] == ["jax"] * 6 + ["torch"] * 6
  assert [(r["layer"], r["piece"]) for r in theirs] == [(r["layer"], r["piece"]) for r in ours]
  assert all(r["us"] > 0 and r["batch_size"] == 8 for r in theirs)
