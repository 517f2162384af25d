"""Training-step throughput of the project's compiled steps, optionally beside PyTorch (JSON).

  python -m scripts.benchmark                          # the reference workload, batch 64 and 256
  python -m scripts.benchmark --torch                  # ... and the same network in PyTorch
  python -m scripts.benchmark --strategy=mlp,dcgan --batch_size=64 --steps_per_call=8
  python -m scripts.benchmark --conv_impl=stock,fast   # flax's layers against the fast ones
  python -m scripts.benchmark --dtype=float32,bfloat16 # mixed precision (GPU/TPU)

One JSON line per configuration (every combination of the comma-separated flags), then, with
--torch, one line for PyTorch eager on the same workload and batch, run in a child process
(scripts/benchmark_torch.py) after the JAX measurement, and the ratio in the JAX line.

Workloads (--strategy):
  reference: the performance issue's DCGAN, kept exactly so figures stay comparable: the
    project's `gan` strategy on `--arch=dcgan` (64 base channels, z of 64), Adam 2e-4, b1 0.5,
    non-saturating loss; one step = one D update on a real batch and a batch of fakes, then one
    G update. (The project's generator ends in a sigmoid, PyTorch's reference in a tanh.)
  dcgan / mlp: the project's default AE-GAN (`ae_pretrain`) adversarial step on the dcgan
    networks, and on the seed's networks (experiments/presets/seed.flags: Dense-128 MLPs).
What is timed is exactly what the trainer runs: train.compile_phase's jitted call, which
gathers the batch from the device-resident data by the epoch's permutation, steps, and donates
the state. Data: N = 100 batches of random uint8 28x28x1 images placed on the device once.

Figures: compile_s is the first call (tracing, compilation, one call); steps_per_sec the median
of --windows windows of --window_seconds each, after --warmup_s of steady running;
images_per_sec = steps_per_sec * batch; peak_memory_bytes the device's peak where it reports
one (GPU/TPU), else the process's peak resident set (peak_memory_kind says which).
"""

import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from aegan_jax import cli, host
from aegan_jax.errors import UserError
from aegan_jax.models.conv import IMPLS, resolve

FLAGS = flags.FLAGS

# Config overrides per workload (the rest is aegan_jax.config.Config's defaults).
WORKLOADS = {
    "reference": dict(strategy="gan", arch="dcgan", dcgan_channels=64, latent_dim=64,
                      g_lr=2e-4, d_lr=2e-4, adam_b1=0.5, loss="non_saturating"),
    "dcgan": dict(strategy="ae_pretrain", arch="dcgan"),
    "mlp": dict(strategy="ae_pretrain", arch="mlp", mlp_hidden=(128,), code_dim=64, latent_dim=64,
                loss="minimax", g_lr=1e-4, d_lr=1e-4, ae_lr=1e-4, adam_b1=0.9),
}
_PHASE = {"gan": "gan", "ae_pretrain": "gan"}


def define_flags() -> None:
  flags.DEFINE_list("strategy", ["reference"], f"Workloads: {', '.join(WORKLOADS)}.")
  flags.DEFINE_list("batch_size", ["64", "256"], "Global batch sizes.")
  flags.DEFINE_list("steps_per_call", ["1"], "Training steps per compiled call (lax.scan).")
  flags.DEFINE_list("conv_impl", ["auto"], "auto, stock or fast (models/conv.py).")
  flags.DEFINE_list("dtype", ["float32"], "float32 or bfloat16 (mixed precision).")
  flags.DEFINE_bool("torch", False, "Also run the workload in PyTorch eager (needs torch).")
  flags.DEFINE_integer("windows", 5, "Timed windows; steps/s is their median.")
  flags.DEFINE_float("window_seconds", 2.0, "Length of one timed window.")
  flags.DEFINE_float("warmup_s", 2.0, "Steady running after the first call, before timing.")
  flags.DEFINE_string("out", "", "Also append the JSON lines to this file.")


def _peak_memory() -> tuple[int, str]:
  stats = jax.local_devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"]), "device"
  return host.peak_rss(), "host_peak_rss"


# Dense peak FLOP/s of accelerators (vendor datasheets, SXM parts, no sparsity), by the dtype of
# the matmul inputs; XLA runs float32 matmuls and convolutions as TF32 on these GPUs.
_PEAK_TFLOPS = {"H100": {"bfloat16": 989.4, "float32": 494.7},
                "H200": {"bfloat16": 989.4, "float32": 494.7}}


def peak_tflops(device_kind: str, dtype: str):
  for name, peaks in _PEAK_TFLOPS.items():
    if name in device_kind:
      return peaks[dtype]
  return None


def measure(workload: str, batch_size: int, steps_per_call: int = 1, conv_impl: str = "auto",
            dtype: str = "float32", windows: int = 5, window_seconds: float = 2.0,
            warmup_s: float = 2.0) -> dict:
  """Times the trainer's compiled step for one configuration; returns the JSON record."""
  from aegan_jax import config as config_lib, data as data_lib, parallel, strategies, train
  from aegan_jax.data import pipeline

  config = config_lib.validate(config_lib.Config(
      **WORKLOADS[workload], batch_size=batch_size, conv_impl=conv_impl, dtype=dtype,
      steps_per_call=steps_per_call))
  dp = parallel.DataParallel.create()
  dp.check_batch_size(batch_size)
  spec = data_lib.Spec((28, 28, 1), unit_range=True)
  strategy = strategies.build(config, spec)
  n = 100 * batch_size
  rng = np.random.default_rng(0)
  data = dp.replicate({"image": rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8),
                       "label": np.zeros((n,), np.int32)})
  perm = dp.replicate(pipeline.epoch_permutation(jax.random.key(1), 0, n))
  state = dp.replicate(strategy.init(jax.random.key(config.seed)))
  fn = train.compile_phase(config, strategy, _PHASE[config.strategy], spec, dp,
                           steps_per_call=steps_per_call)

  def call(state):
    # Stay inside the first epoch's permutation: the step index only picks the batch.
    state = state.replace(step=state.step % (100 - steps_per_call))
    return fn(state, data, perm, {})

  # The step's arithmetic as written (XLA's cost analysis before optimization), per step.
  cost = fn.lower(state, data, perm, {}).cost_analysis() or {}
  flops = float(cost.get("flops", 0.0)) / steps_per_call
  start = time.perf_counter()
  state, metrics = call(state)
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  while time.perf_counter() - start < warmup_s:
    state, metrics = call(state)
  jax.block_until_ready(metrics)
  rates = []
  for _ in range(windows):
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < window_seconds:
      state, metrics = call(state)
      calls += 1
      if calls % 8 == 0:  # keep a few calls in flight, not an unbounded queue
        jax.block_until_ready(metrics)
    jax.block_until_ready(metrics)
    rates.append(calls * steps_per_call / (time.perf_counter() - start))
  if not all(np.isfinite(v).all() for v in jax.tree.leaves(jax.device_get(metrics))):
    raise RuntimeError(f"{workload}: non-finite metrics; the timing would be meaningless")
  rate = statistics.median(rates)
  peak, peak_kind = _peak_memory()
  device = jax.devices()[0]
  achieved = flops * rate / 1e12
  peak_tf = peak_tflops(device.device_kind, dtype)
  return {"framework": f"jax {jax.__version__}", "workload": workload,
          "strategy": config.strategy, "arch": config.arch, "batch_size": batch_size,
          "dtype": dtype, "conv_impl": resolve(conv_impl) if config.arch == "dcgan" else "-",
          "steps_per_call": steps_per_call, "device_kind": device.device_kind,
          "platform": device.platform, "device_count": dp.num_devices,
          "compile_s": round(compile_s, 3), "steps_per_sec": round(rate, 3),
          "images_per_sec": round(rate * batch_size, 1),
          "window_steps_per_sec": [round(r, 3) for r in rates],
          "flops_per_step": flops, "achieved_tflops": round(achieved, 4),
          "peak_tflops": peak_tf,
          "peak_fraction": round(achieved / peak_tf, 4) if peak_tf else None,
          "peak_memory_bytes": peak, "peak_memory_kind": peak_kind}


def run_torch(workload: str, batch_size: int, dtype: str, windows: int,
              window_seconds: float) -> dict:
  """The PyTorch twin of a workload, measured in a child process (scripts/benchmark_torch.py)."""
  cmd = [sys.executable, "-m", "scripts.benchmark_torch", f"--workload={workload}",
         f"--batch_size={batch_size}", f"--dtype={dtype}", f"--windows={windows}",
         f"--window_seconds={window_seconds}"]
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
  if proc.returncode != 0:
    last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise UserError(f"{shlex.join(cmd)} failed: {last}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _ints(name: str, values: list[str]) -> list[int]:
  try:
    out = [int(v) for v in values]
  except ValueError:
    raise UserError(f"--{name} takes integers like 64,256, got {','.join(values)}") from None
  if not out or any(v <= 0 for v in out):
    raise UserError(f"--{name} must be positive integers, got {','.join(values)}")
  return out


def _check_choices(name: str, values: list[str], choices) -> None:
  bad = [v for v in values if v not in choices] or ([] if values else [""])
  if bad:
    raise UserError(f"unknown --{name} {bad[0]!r}; choose from {', '.join(choices)}")


def main(argv) -> None:
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags look like --torch")
  _check_choices("strategy", FLAGS.strategy, WORKLOADS)
  _check_choices("conv_impl", FLAGS.conv_impl, IMPLS)
  _check_choices("dtype", FLAGS.dtype, ("float32", "bfloat16"))
  batch_sizes = _ints("batch_size", FLAGS.batch_size)
  steps_per_call = _ints("steps_per_call", FLAGS.steps_per_call)
  if FLAGS.windows < 1 or FLAGS.window_seconds <= 0 or FLAGS.warmup_s < 0:
    raise UserError("--windows must be >= 1, --window_seconds > 0 and --warmup_s >= 0")
  if FLAGS.torch and importlib.util.find_spec("torch") is None:
    raise UserError("--torch needs PyTorch, which is not installed: pip install -e '.[bench]' "
                    "(or drop --torch)")
  out = open(FLAGS.out, "a") if FLAGS.out else None

  def emit(record: dict) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    if out:
      out.write(line + "\n")
      out.flush()

  for workload in FLAGS.strategy:
    for batch in batch_sizes:
      for dtype in FLAGS.dtype:
        records = [measure(workload, batch, spc, impl, dtype, FLAGS.windows,
                           FLAGS.window_seconds, FLAGS.warmup_s)
                   for impl in FLAGS.conv_impl for spc in steps_per_call]
        if FLAGS.torch:
          ref = run_torch(workload, batch, dtype, FLAGS.windows, FLAGS.window_seconds)
          for r in records:
            r["torch_steps_per_sec"] = ref["steps_per_sec"]
            r["speedup_vs_torch"] = round(r["steps_per_sec"] / ref["steps_per_sec"], 3)
        for r in records:
          emit(r)
        if FLAGS.torch:
          emit(ref)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
