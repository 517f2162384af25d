"""scripts.sweep: the grid, random search, names, statistics and refusals as pure functions; then
a real 4-run sweep on the 2-D grid, run twice (the second launches nothing)."""

import csv
import json
import math
import os
import re
import sys

import pytest

from aegan_jax.errors import UserError
from aegan_jax.commands import sweep
from tests.conftest import run_cases, run_module

TINY = ["--dataset=grid", "--strategy=gan", "--arch=mlp", "--mlp_hidden=32", "--steps=30",
        "--batch_size=64", "--log_every=10", "--sample_every=30", "--checkpoint_every=30",
        "--eval_every=30"]


# ----------------------------------------------------------------------------- pure functions


def test_grid_is_the_product_in_order_with_typed_values():
  axes = sweep.parse_spec("g_lr=1e-4,2e-4; strategy=gan,mdgan,aae")
  grid = sweep.expand_grid(axes)
  assert len(grid) == 6
  assert grid[0] == {"g_lr": 1e-4, "strategy": "gan"}
  assert grid[1] == {"g_lr": 1e-4, "strategy": "mdgan"}  # the last axis varies fastest
  assert grid[5] == {"g_lr": 2e-4, "strategy": "aae"}
  assert sweep.expand_grid([]) == [{}]  # seeds only: one configuration


def test_values_parse_as_their_field_types():
  axes = sweep.parse_spec("spectral_norm=true,0;mlp_hidden=128/128,64;batch_size=32;"
                          "dataset=grid;ema_decay=0.999")
  assert [a.values for a in axes] == [(True, False), ((128, 128), (64,)), (32,), ("grid",),
                                      (0.999,)]
  command = sweep.train_command("R/c/seed_1", ["--steps=5"], sweep.expand_grid(axes)[0], 1)
  assert command[:4] == [sys.executable, "-m", "aegan_jax.commands.train", "--workdir=R/c/seed_1"]
  # The swept values come after the common flags (they win over a preset's) and --seed last.
  assert command[4:] == ["--steps=5", "--spectral_norm=true", "--mlp_hidden=128,128",
                         "--batch_size=32", "--dataset=grid", "--ema_decay=0.999", "--seed=1"]


@pytest.mark.parametrize("spec,message", [
    ("g_rl=1e-4", "unknown field 'g_rl' (did you mean g_lr?)"),
    ("g_lr=abc", "g_lr=abc: a value of g_lr is a number"),
    ("batch_size=1.5", "a value of batch_size is an integer"),
    ("spectral_norm=maybe", "a value of spectral_norm is true or false"),
    ("mlp_hidden=64/x", "a value of mlp_hidden is integers joined by /"),
    ("g_lr=", "empty value"),
    ("g_lr=1e-4,,2e-4", "empty value"),
    ("g_lr=1e-4,0.0001", "lists 0.0001 twice"),
    ("g_lr=1e-4;g_lr=2e-4", "names g_lr twice"),
    ("seed=0,1", "may not set seed: --seeds=S"),
    ("steps=uniform:1:9", "uniform draws floats but steps is int; use int_uniform"),
    ("g_lr=loguniform:0:1", "loguniform needs LOW > 0"),
    ("g_lr=uniform:3:1", "LOW must be below HIGH"),
])
def test_bad_specs_are_refused(spec, message):
  with pytest.raises(UserError, match=re.escape(message)):
    sweep.parse_spec(spec)


def test_distributions_need_random_search():
  with pytest.raises(UserError, match="is a distribution; sample it with --random"):
    sweep.expand_grid(sweep.parse_spec("g_lr=loguniform:1e-5:1e-3"))


def test_random_search_is_deterministic_and_respects_the_distributions():
  axes = sweep.parse_spec("g_lr=loguniform:1e-5:1e-3;adam_b1=uniform:0.2:0.6;"
                          "steps=int_uniform:3:5;strategy=gan,mdgan")
  draws = sweep.sample_random(axes, 300, seed=0)
  assert draws == sweep.sample_random(axes, 300, seed=0)
  assert draws != sweep.sample_random(axes, 300, seed=1)
  lrs = [d["g_lr"] for d in draws]
  assert all(1e-5 <= v <= 1e-3 for v in lrs)
  # Log-uniform: each decade holds about half; a uniform draw would put 90% in the upper one.
  assert 110 <= sum(v < 1e-4 for v in lrs) <= 190
  assert all(0.2 <= d["adam_b1"] <= 0.6 for d in draws)
  assert 110 <= sum(d["adam_b1"] < 0.4 for d in draws) <= 190
  assert {d["steps"] for d in draws} == {3, 4, 5}
  assert all(isinstance(d["steps"], int) for d in draws)
  assert {d["strategy"] for d in draws} == {"gan", "mdgan"}


def test_names_are_unique_safe_and_deterministic():
  configs = sweep.expand_grid(sweep.parse_spec(
      "inception_weights=w/a.npz,w_a.npz;mlp_hidden=64/64,64;g_lr=1e-4,2e-4"))
  names = sweep.name_configs(configs, random_search=False)
  assert names == sweep.name_configs(configs, random_search=False)
  assert len(set(names)) == len(names) == 8
  for n in names:
    assert re.fullmatch(r"[A-Za-z0-9._,=+-]{1,80}", n), n
  assert "inception_weights=w_a.npz,mlp_hidden=64x64,g_lr=0.0001" in names  # readable when safe
  long = sweep.config_name({"eval_metrics": "fid" * 40})
  assert len(long) <= 80 and long != sweep.config_name({"eval_metrics": "fid" * 41})
  random_names = sweep.name_configs([{"g_lr": 1e-4}, {"g_lr": 1e-4}], random_search=True)
  assert random_names == ["r000_g_lr=0.0001", "r001_g_lr=0.0001"]


def test_mean_and_standard_error_by_hand():
  # [1, 2, 4]: mean 7/3, squared deviations 16/9 + 1/9 + 25/9 = 42/9, sample variance 7/3,
  # standard error sqrt(7/3 / 3) = sqrt(7)/3 = 0.8819.
  mean, se = sweep.mean_se([1.0, 2.0, 4.0])
  assert mean == pytest.approx(7 / 3) and se == pytest.approx(math.sqrt(7) / 3)
  assert sweep.cell([1.0, 2.0, 4.0]) == "2.333 ± 0.88"
  assert sweep.cell([5.0]) == "5"  # one seed: no error bar
  assert sweep.cell([1.0, 3.0, float("inf")]) == "2 ± 1 (1 non-finite)"
  assert sweep.cell([]) == "—"


def test_table_shows_eval_metrics_then_the_last_phases_losses():
  def row(config, seed, final):
    return {"config": config, "values": {"g_lr": float(config)}, "seed": seed,
            "workdir": f"W/{config}/seed_{seed}", "status": "done", "final": final,
            "last_phase": "adversarial", "error": ""}
  final = {"pretrain/ae_loss": 0.1, "pretrain_eval/heldout_recon_mse": 0.02,
           "adversarial/g_loss": 1.0, "adversarial/d_real": 0.5,
           "adversarial/steps_per_sec": 900.0, "eval/modes_captured": 20.0}
  rows = [row("0.1", 0, final), row("0.1", 1, {**final, "eval/modes_captured": 24.0}),
          {**row("0.2", 0, {}), "status": "failed", "error": "error: boom"}]
  assert sweep.table_metrics(rows) == ["eval/modes_captured", "pretrain_eval/heldout_recon_mse",
                                       "adversarial/g_loss"]
  table = sweep.markdown(rows, sweep.parse_spec("g_lr=0.1,0.2"), "python -m scripts.sweep",
                         random_search=False)
  assert "| 0.1 | 2 | 22 ± 2 | 0.02 ± 0 | 1 ± 0 |" in table
  assert "| 0.2 | 0 (1 failed) | — | — | — |" in table
  assert "- `W/0.2/seed_0`: error: boom" in table


def test_a_failing_run_is_reported_with_its_last_line(tmp_path):
  workdir = str(tmp_path / "run")
  code, line = sweep.launch(
      [sys.executable, "-c", "import sys; print('working'); sys.exit('error: it broke')"],
      workdir)
  assert (code, line) == (1, "error: it broke")
  log = open(os.path.join(workdir, "train.log")).read()
  assert log.startswith("# ") and "working\n" in log  # the command, then the run's output
  # Exit 0 without summary.json (a stopped run) is not finished either.
  assert sweep.launch([sys.executable, "-c", "pass"], workdir)[0] != 0


def test_sigterm_stops_the_running_run_and_starts_no_other(tmp_path):
  # In a fresh interpreter: the signal goes to the whole test process otherwise.
  code = f"""
import os, signal, sys, threading, time
from aegan_jax.commands import sweep
sweep.interrupt_on_sigterm()
runs = [{{"config": f"c{{i}}", "seed": 0, "workdir": os.path.join({str(tmp_path)!r}, f"c{{i}}"),
          "command": [sys.executable, "-c", "import time; time.sleep(60)"]}} for i in range(3)]
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
start = time.time()
try:
  sweep.run_all(runs, 1)
except KeyboardInterrupt:
  print("interrupted after", round(time.time() - start))
"""
  proc = run_module("tests._run_code", code, timeout=20)
  assert proc.stdout.startswith("interrupted after"), proc.stderr[-2000:]
  assert int(proc.stdout.split()[-1]) < 30  # the sleeping run was stopped, not waited for
  assert sorted(os.listdir(tmp_path)) == ["c0"]  # c1 and c2 never started


# ----------------------------------------------------------------------------- the command line


# Command lines the sweep refuses before launching anything, and the line it says.
REFUSALS = [
    (["--sweep=g_rl=1e-4"], "error: --sweep: unknown field 'g_rl' (did you mean g_lr?); the "
                            "fields are the train flags"),
    (["--sweep=g_lr=fast"], "error: --sweep g_lr=fast: a value of g_lr is a number"),
    (["--sweep=g_lr=1e-4", "--", "--seed=3"], "error: --seed may not be among the train flags "
                                              "after --: --seeds=S runs every configuration"),
    (["--sweep=seed=1,2"], "error: --sweep may not set seed: --seeds=S"),
    (["--sweep=g_lr=1e-4", "--", "--workdir=x"], "error: --workdir may not be among"),
    (["--sweep=g_lr=1e-4", "--", "--stpes=3"], "error: the train flags after --: unknown "
                                               "train flag '--stpes=3' (did you mean steps?)"),
    (["--sweep=strategy=gan,began", "--", "--loss=hinge"],
     "error: configuration strategy=began: --strategy=began trains its discriminator"),
]


def test_cli_refusals_are_one_line_and_launch_nothing(tmp_path):
  roots = [tmp_path / f"sweep{i}" for i in range(len(REFUSALS))]
  procs = run_cases("scripts.sweep", [[f"--workdir={root}", *args]
                                      for root, (args, _) in zip(roots, REFUSALS)])
  for root, (args, message), proc in zip(roots, REFUSALS, procs):
    assert proc.returncode == 2, (args, proc.stderr[-2000:])
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], args
    assert proc.stderr.startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr and not root.exists()


def test_a_failed_run_fails_the_sweep_and_is_tabled(tmp_path):
  root = tmp_path / "sweep"  # passes every check before training; the data check refuses it
  proc = run_module("scripts.sweep", "--sweep=batch_size=1000000", f"--workdir={root}", "--",
                    *TINY, timeout=120)
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert "exceeds the 100000 training examples of 'grid'" in proc.stderr.splitlines()[-1]
  rows = list(csv.DictReader(open(root / "sweep.csv")))
  assert [(r["batch_size"], r["status"]) for r in rows] == [("1000000", "failed")]
  assert "| 1000000 | 0 (1 failed) |" in (root / "sweep.md").read_text()


def test_sweep_of_four_runs_then_resume_skips_them(tmp_path):
  root = tmp_path / "sweep"
  args = ["--sweep=g_lr=1e-4,2e-4", "--seeds=2", "--parallel=2", f"--workdir={root}", "--",
          *TINY]
  first = run_module("scripts.sweep", *args)
  assert first.returncode == 0, first.stderr[-3000:]
  assert "skipped 0 finished runs; launching 4, 2 at a time" in first.stderr

  rows = list(csv.DictReader(open(root / "sweep.csv")))
  assert [(r["g_lr"], r["seed"], r["status"]) for r in rows] == [
      ("0.0001", "0", "done"), ("0.0001", "1", "done"), ("0.0002", "0", "done"),
      ("0.0002", "1", "done")]
  for r in rows:
    assert os.path.exists(os.path.join(r["workdir"], "summary.json"))
    # The grid's mode protocol (25 modes) and the gan phase's losses, all finite.
    assert float(r["eval/modes_captured"]) in range(26)
    for key in ("eval/high_quality_percent", "gan/d_loss", "gan/g_loss"):
      assert math.isfinite(float(r[key])), (key, r[key])

  table = (root / "sweep.md").read_text()
  assert first.stdout == table  # the table is also printed
  header = next(line for line in table.splitlines() if line.startswith("| g_lr"))
  assert header.startswith("| g_lr | seeds | eval/high_quality_percent | eval/modes_captured |")
  assert "steps_per_sec" not in header
  config_rows = [line for line in table.splitlines() if line.startswith("| 0.000")]
  assert len(config_rows) == 2 and all("±" in line for line in config_rows)
  # The table's cell is the mean ± standard error of the CSV's two seeds.
  modes = [float(r["eval/modes_captured"]) for r in rows[:2]]
  assert f"| {sweep.cell(modes)} |" in config_rows[0]
  assert (root / "sweep.png").stat().st_size > 0

  logs = sorted(str(p) for p in root.glob("*/seed_*/train.log")) + sorted(
      str(p) for p in root.glob("*/seed_*/metrics.jsonl"))
  assert len(logs) == 8
  before = {p: (os.stat(p).st_mtime_ns, open(p).read()) for p in logs}
  second = run_module("scripts.sweep", *args)
  assert second.returncode == 0, second.stderr[-3000:]
  assert "skipped 4 finished runs; nothing to launch" in second.stderr
  assert "start" not in second.stderr
  assert {p: (os.stat(p).st_mtime_ns, open(p).read()) for p in logs} == before
  assert (root / "sweep.md").read_text() == table

  # Another sweep on the same root is refused and changes nothing.
  spec = (root / "sweep.json").read_text()
  other = run_module("scripts.sweep", "--sweep=g_lr=3e-4", f"--workdir={root}", "--", *TINY)
  assert other.returncode == 2
  assert other.stderr.startswith(f"error: {root} holds another sweep")
  assert (root / "sweep.json").read_text() == spec
  assert json.loads(spec)["spec"]["axes"] == [{"name": "g_lr", "values": ["0.0001", "0.0002"]}]


def test_a_sweep_grows_by_seeds_and_refuses_other_changes(tmp_path):
  """The same axes and flags with more seeds extend a sweep's root; fewer seeds or another
  axis are refused in one line, and sweep.json is left as it was."""
  axes = sweep.parse_spec("g_lr=1e-4,2e-4")
  spec = sweep.sweep_spec(axes, ["--steps=3"], 2, 0, 0)
  (tmp_path / "sweep.json").write_text(json.dumps({"spec": spec}))
  saved = (tmp_path / "sweep.json").read_text()
  sweep.check_root(str(tmp_path), sweep.sweep_spec(axes, ["--steps=3"], 3, 0, 0))
  with pytest.raises(UserError, match="--seeds can grow to add seeds, not shrink"):
    sweep.check_root(str(tmp_path), sweep.sweep_spec(axes, ["--steps=3"], 1, 0, 0))
  with pytest.raises(UserError, match="holds another sweep"):
    sweep.check_root(str(tmp_path), sweep.sweep_spec(axes, ["--steps=4"], 3, 0, 0))
  with pytest.raises(UserError, match="holds another sweep"):
    sweep.check_root(str(tmp_path), sweep.sweep_spec(sweep.parse_spec("g_lr=3e-4"), ["--steps=3"],
                                                     2, 0, 0))
  assert (tmp_path / "sweep.json").read_text() == saved
