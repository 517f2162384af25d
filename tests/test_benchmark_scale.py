"""scripts.benchmark_scale on a tiny setting: its JSON lines hold together and say what was run.

The figures themselves depend on the machine; what is checked is that the rows report the K,
the runs and the device counts asked for, that the rates are real numbers, and that every
derived figure (speedups, member rates, sums) is what its inputs give.
"""

import json
import math

import pytest

from scripts import benchmark_scale
from tests.conftest import run_module


def _close(a, b, rel=1e-2, abs_=2e-3):
  return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def _rate(x):
  return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_steady_rate_drops_each_phases_first_window(tmp_path):
  path = tmp_path / "metrics.jsonl"
  rows = [("pretrain", 5.0), ("pretrain", 100.0), ("pretrain", 300.0), ("gan", 1.0),
          ("gan", 200.0), ("pretrain_eval", None)]
  path.write_text("\n".join(json.dumps({"step": i, "phase": p, **(
      {"steps_per_sec": r} if r is not None else {"heldout_recon_mse": 0.1})})
      for i, (p, r) in enumerate(rows)) + "\n")
  # Compiling windows 5.0 and 1.0 dropped; median of 100, 300, 200.
  assert benchmark_scale.steady_rate(str(path)) == 200.0


def test_tiny_benchmark_reports_what_it_ran(tmp_path):
  out = tmp_path / "results.jsonl"
  proc = run_module("scripts.benchmark_scale", "--steps=60", "--population_sizes=2,1",
                    "--configs=small", "--device_counts=1,2", "--dcgan_steps=0",
                    f"--out={out}", timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert out.read_text().strip().splitlines() == lines
  rows = [json.loads(line) for line in lines]
  assert [r["part"] for r in rows] == ["population"] * 2 + ["devices"] * 2 + ["summary"]

  pop = rows[:2]
  assert [(r["config"], r["K"], r["steps"]) for r in pop] == [("small", 1, 60), ("small", 2, 60)]
  for r in pop:
    k, seq, p = r["K"], r["sequential"], r["population"]
    assert seq["runs"] == len(seq["runs_wall_s"]) == len(seq["runs_steps_per_s"]) == k
    assert all(_rate(x) for x in seq["runs_wall_s"] + seq["runs_steps_per_s"])
    assert _close(seq["wall_s"], sum(seq["runs_wall_s"]))
    assert all(_rate(x) for x in (seq["wall_s"], seq["member_steps_per_s"], p["wall_s"],
                                  p["steps_per_s"], p["member_steps_per_s"]))
    assert _close(p["member_steps_per_s"], k * p["steps_per_s"], abs_=0.2)
    assert _close(r["speedup_wall"], seq["wall_s"] / p["wall_s"])
    assert _close(r["speedup_steady"], p["member_steps_per_s"] / seq["member_steps_per_s"])
    # Training 60 steps takes less than the whole call: start-up and outputs are the rest.
    assert 0 < p["overhead_s"] < p["wall_s"]
    assert r["backend"] == "cpu" and r["device_count"] == 1 and r["jax"]
    assert "--mlp_hidden=32 --batch_size=64" in r["config_flags"]
  # The K=1 row's sequential run is the first of the K=2 row's.
  assert pop[1]["sequential"]["runs_wall_s"][0] == pop[0]["sequential"]["wall_s"]

  for n, r in zip((1, 2), rows[2:4]):
    # The child saw exactly the devices it was asked for (forced host devices).
    assert r["devices"] == r["device_count"] == n
    preset = r["preset"]
    assert preset["steps"] == 60 and preset["batch_size"] == 256 and preset["log_every"] <= 10
    assert _rate(preset["steps_per_s"]) and _rate(preset["wall_s"])
    assert _close(preset["examples_per_s"], 256 * preset["steps_per_s"], abs_=30)
    assert "dcgan_mnist5k" not in r

  summary = rows[-1]
  assert "target_8x_met" not in summary["population"]["small"]  # K=16 was not measured
  assert summary["population_note"].startswith("K=16 not measured")
  assert [d["devices"] for d in summary["devices"]] == [1, 2]
  assert summary["devices"][0]["preset"]["relative_to_1_device"] == 1.0
  assert _close(summary["devices"][1]["preset"]["relative_to_1_device"],
                rows[3]["preset"]["steps_per_s"] / rows[2]["preset"]["steps_per_s"])
  assert "--population_sizes=2,1" in summary["command"]


@pytest.mark.parametrize("flag,message", [
    ("--population_sizes=0,4", "--population_sizes must be comma-separated positive integers"),
    ("--device_counts=3", "--device_counts: 3 does not divide the global batch 256"),
    ("--configs=huge", "--configs takes preset and/or small"),
])
def test_bad_flags_are_one_line_errors(flag, message, tmp_path):
  proc = run_module("scripts.benchmark_scale", flag, f"--out={tmp_path / 'r.jsonl'}")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {message}")
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "r.jsonl").exists()
