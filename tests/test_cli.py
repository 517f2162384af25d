"""The training command's inspection flags: --print_config and --dry_run write nothing."""

import json
import os

from tests.conftest import run_module


def test_print_config_and_dry_run_write_nothing(data_dir, tmp_path):
  workdir = tmp_path / "never"
  shown = run_module("experiments.train", "--flagfile=experiments/presets/default.flags",
                     "--steps=123", f"--workdir={workdir}", "--print_config", data_dir=data_dir)
  assert shown.returncode == 0, shown.stderr[-2000:]
  config = json.loads(shown.stdout)
  assert (config["steps"], config["code_components"], config["ema_decay"]) == (123, 10, 0.999)

  built = run_module("experiments.train", "--strategy=gan", "--mlp_hidden=32",
                     f"--workdir={workdir}", "--dry_run", data_dir=data_dir)
  assert built.returncode == 0, built.stderr[-2000:]
  report = json.loads(built.stdout)
  assert report["phases"] == [{"name": "gan", "steps": 10000}]
  assert report["parameters"]["generator"] > 0 and report["example_shape"] == [28, 28, 1]
  assert not os.path.exists(workdir)

  missing = run_module("experiments.train", "--strategy=gan", data_dir=data_dir)
  assert missing.returncode == 2 and missing.stderr.strip().splitlines()[-1].startswith(
      "error: --workdir is required")


def test_help_groups_the_flags_and_lists_the_choices():
  shown = run_module("experiments.train", "--help")  # absl exits 1 after printing help
  text = shown.stdout
  assert "Traceback" not in shown.stderr
  titles = ["What to train:", "How long:", "Networks:", "Optimization", "Run control:",
            "Several processes (hosts):"]
  positions = [text.index(t) for t in titles]
  assert positions == sorted(positions)  # in the order of Config's source
  for line in ("--strategy=ae_pretrain  (one of: aae, ae_pretrain, began, bigan, ebgan, gan, ",
               "--dataset=mnist5k  (one of: ", "--arch=mlp  (one of: dcgan, mlp)",
               "--loss=non_saturating  (one of: hinge, lsgan, minimax, non_saturating, wgan)",
               "--steps=10000\n", "--mlp_hidden=512,512\n", "--workdir:"):
    assert line in text, line
  assert text.index("--steps=") < text.index("--latent_dim=")  # grouped, not alphabetical


def test_console_scripts_run_from_any_directory_and_only_the_library_is_installed(tmp_path):
  import subprocess
  import sys
  bin_dir = os.path.dirname(sys.executable)
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  shown = subprocess.run([os.path.join(bin_dir, "aegan-train"), "--strategy=gan", "--steps=7",
                          "--print_config"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
  assert shown.returncode == 0, shown.stderr[-2000:]
  assert json.loads(shown.stdout)["steps"] == 7
  for name in ["aegan-evaluate", "aegan-sample", "aegan-sweep"]:
    proc = subprocess.run([os.path.join(bin_dir, name), "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    # absl exits 1 after printing help; the command's own flags are listed.
    assert "--workdir:" in proc.stdout and "Traceback" not in proc.stderr, (name, proc.stderr)
  # Outside the repository root, the entry-point folders are not importable packages.
  for package in ["experiments", "scripts"]:
    proc = subprocess.run([sys.executable, "-c", f"import {package}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "No module named" in proc.stderr, package
