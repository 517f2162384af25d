"""Training-step throughput of the project's compiled steps, optionally beside PyTorch (JSON).

  python -m scripts.benchmark                          # the reference workload, batch 64 and 256
  python -m scripts.benchmark --torch                  # ... and the same network in PyTorch
  python -m scripts.benchmark --strategy=mlp,dcgan --batch_size=64 --steps_per_call=8
  python -m scripts.benchmark --conv_impl=stock,fast   # flax's layers against the fast ones
  python -m scripts.benchmark --dtype=float32,bfloat16 # mixed precision (GPU/TPU)

One JSON line per configuration (every combination of the comma-separated flags), then, with
--torch, one line for PyTorch eager on the same workload and batch, run in a child process
(scripts/benchmark_torch.py; the two frameworks never share a process or its thread pools),
and the ratio in the JAX line. The configurations of a workload and batch size, and PyTorch,
take turns window by window, so that a machine whose speed drifts during the run (a shared
or virtual one) moves every figure alike and the ratios stay true.

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
images_per_sec = steps_per_sec * batch; flops_per_step XLA's count of the step's arithmetic as
written (before optimization), achieved_tflops = flops_per_step * steps_per_sec, and
peak_fraction that over the device's dense peak where it is known (H100/H200: bf16 989, TF32
495 TFLOP/s); peak_memory_bytes the device's peak where it reports one (GPU/TPU), else the
process's peak resident set (peak_memory_kind says which); page_faults_per_step the host pages
faulted in per step during the timed windows (median; 0 when the allocator reuses memory). Like
every entry point, the JAX side
runs with glibc keeping freed memory (aegan_jax/cpu/allocator.py) and threefry unrolled on CPU
(aegan_jax/cpu/threefry.py); AEGAN_JAX_KEEP_FREED_MEMORY=0 / AEGAN_JAX_UNROLL_THREEFRY=0 turn them
off to measure what they bring. The PyTorch side runs as it comes, or with the same allocator
setting under --torch_keep_freed_memory (keeps_freed_memory in each line says which).
"""

import importlib.util
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time

from absl import flags
import jax
import numpy as np

from aegan_jax import cli
from aegan_jax.cpu import allocator, threefry
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
_SETTLE_S = 0.2  # a pause before each window: the other side's idle threads stop spinning


def define_flags() -> None:
  flags.DEFINE_list("strategy", ["reference"], f"Workloads: {', '.join(WORKLOADS)}.")
  flags.DEFINE_list("batch_size", ["64", "256"], "Global batch sizes.")
  flags.DEFINE_list("steps_per_call", ["1"], "Training steps per compiled call (lax.scan).")
  flags.DEFINE_list("conv_impl", ["auto"], "auto, stock or fast (models/conv.py).")
  flags.DEFINE_list("dtype", ["float32"], "float32 or bfloat16 (mixed precision).")
  flags.DEFINE_bool("torch", False, "Also run the workload in PyTorch eager (needs torch).")
  flags.DEFINE_bool("torch_keep_freed_memory", False, "Run PyTorch with glibc keeping freed "
                    "memory too, as the JAX side does (aegan_jax/cpu/allocator.py); off: as it comes.")
  flags.DEFINE_integer("windows", 5, "Timed windows; steps/s is their median.")
  flags.DEFINE_float("window_seconds", 2.0, "Length of one timed window.")
  flags.DEFINE_float("warmup_s", 2.0, "Steady running after the first call, before timing.")
  flags.DEFINE_string("out", "", "Also append the JSON lines to this file.")


def _peak_memory() -> tuple[int, str]:
  stats = jax.local_devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"]), "device"
  return allocator.peak_rss(), "host_peak_rss"


# Dense peak FLOP/s of accelerators (vendor datasheets, SXM parts, no sparsity), by the dtype of
# the matmul inputs; XLA runs float32 matmuls and convolutions as TF32 on these GPUs.
_PEAK_TFLOPS = {"H100": {"bfloat16": 989.4, "float32": 494.7},
                "H200": {"bfloat16": 989.4, "float32": 494.7}}


def peak_tflops(device_kind: str, dtype: str):
  for name, peaks in _PEAK_TFLOPS.items():
    if name in device_kind:
      return peaks[dtype]
  return None


class JaxStep:
  """The trainer's compiled step for one configuration, built, compiled and warmed up; then
  timed one window at a time (so that configurations and PyTorch can take turns)."""

  def __init__(self, workload: str, batch_size: int, steps_per_call: int = 1,
               conv_impl: str = "auto", dtype: str = "float32", warmup_s: float = 2.0):
    from aegan_jax import config as config_lib, data as data_lib, parallel, strategies, train
    from aegan_jax.data import pipeline

    config = config_lib.validate(config_lib.Config(
        **WORKLOADS[workload], batch_size=batch_size, conv_impl=conv_impl, dtype=dtype,
        steps_per_call=steps_per_call))
    self.config, self.workload, self.rates, self.faults = config, workload, [], []
    self.dp = parallel.DataParallel.create()
    self.dp.check_batch_size(batch_size)
    spec = data_lib.Spec((28, 28, 1), unit_range=True)
    strategy = strategies.build(config, spec)
    n = 100 * batch_size  # the step index wraps around these 100 batches inside the step
    rng = np.random.default_rng(0)
    self.data = self.dp.replicate({"image": rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8),
                                   "label": np.zeros((n,), np.int32)})
    self.perm = self.dp.replicate(pipeline.epoch_permutation(jax.random.key(1), 0, n))
    self.state = self.dp.replicate(strategy.init(jax.random.key(config.seed)))
    self.fn = train.compile_phase(config, strategy, _PHASE[config.strategy], spec, self.dp,
                                  steps_per_call=steps_per_call)
    # The step's arithmetic as written (XLA's cost analysis before optimization), per step.
    cost = self.fn.lower(self.state, self.data, self.perm, {}).cost_analysis() or {}
    self.flops = float(cost.get("flops", 0.0)) / steps_per_call
    start = time.perf_counter()
    self._call()
    jax.block_until_ready(self.metrics)
    self.compile_s = time.perf_counter() - start
    self._run(warmup_s)

  def _call(self) -> None:
    self.state, self.metrics = self.fn(self.state, self.data, self.perm, {})

  def _run(self, seconds: float) -> int:
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
      self._call()
      calls += 1
      if calls % 8 == 0:  # keep a few calls in flight, not an unbounded queue
        jax.block_until_ready(self.metrics)
    jax.block_until_ready(self.metrics)
    return calls

  def window(self, seconds: float) -> None:
    time.sleep(_SETTLE_S)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    steps = self._run(seconds) * self.config.steps_per_call
    self.rates.append(steps / (time.perf_counter() - start))
    # Pages the host faulted in per step: fresh memory for buffers that could have been reused
    # (aegan_jax/cpu/allocator.py); 0 once the allocator keeps what the steps free.
    self.faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps)

  def record(self) -> dict:
    config = self.config
    if not all(np.isfinite(v).all() for v in jax.tree.leaves(jax.device_get(self.metrics))):
      raise RuntimeError(f"{self.workload}: non-finite metrics; the timing would be meaningless")
    rate = statistics.median(self.rates)
    peak, peak_kind = _peak_memory()
    device = jax.devices()[0]
    achieved = self.flops * rate / 1e12
    peak_tf = peak_tflops(device.device_kind, config.dtype)
    return {"framework": f"jax {jax.__version__}", "workload": self.workload,
            "strategy": config.strategy, "arch": config.arch, "batch_size": config.batch_size,
            "dtype": config.dtype,
            "conv_impl": resolve(config.conv_impl) if config.arch == "dcgan" else "-",
            "steps_per_call": config.steps_per_call, "device_kind": device.device_kind,
            "platform": device.platform, "device_count": self.dp.num_devices,
            "keeps_freed_memory": allocator.KEEPING_FREED_MEMORY,
            "threefry_unrolled": threefry.unroll_threefry_on_cpu(),
            "compile_s": round(self.compile_s, 3), "steps_per_sec": round(rate, 3),
            "images_per_sec": round(rate * config.batch_size, 1),
            "window_steps_per_sec": [round(r, 3) for r in self.rates],
            "page_faults_per_step": round(statistics.median(self.faults), 1),
            "flops_per_step": self.flops, "achieved_tflops": round(achieved, 4),
            "peak_tflops": peak_tf,
            "peak_fraction": round(achieved / peak_tf, 4) if peak_tf else None,
            "peak_memory_bytes": peak, "peak_memory_kind": peak_kind}


class TorchStep:
  """The PyTorch twin of a workload in a child process (scripts/benchmark_torch.py --serve),
  timed one window at a time on request, so that it takes turns with the JAX steps: a machine
  whose speed drifts during the run then moves both sides alike."""

  def __init__(self, workload: str, batch_size: int, dtype: str, keep_freed_memory: bool):
    self.cmd = [sys.executable, "-m", "scripts.benchmark_torch", f"--workload={workload}",
                f"--batch_size={batch_size}", f"--dtype={dtype}", "--serve"]
    if keep_freed_memory:
      self.cmd.append("--keep_freed_memory")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    self.proc = subprocess.Popen(self.cmd, cwd=root, text=True, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    self._read()  # {"ready": ...}: built, first step and warm-up done

  def _read(self) -> dict:
    line = self.proc.stdout.readline()
    if not line:
      self.proc.wait()
      last = (self.proc.stderr.read().strip().splitlines() or ["(no output)"])[-1]
      raise UserError(f"{shlex.join(self.cmd)} failed: {last}")
    return json.loads(line)

  def _ask(self, request: str) -> dict:
    self.proc.stdin.write(request + "\n")
    self.proc.stdin.flush()
    return self._read()

  def window(self, seconds: float) -> None:
    time.sleep(_SETTLE_S)
    self._ask(f"window {seconds}")

  def record(self) -> dict:
    out = self._ask("done")
    self.proc.wait()
    return out


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
        timers = [JaxStep(workload, batch, spc, impl, dtype, FLAGS.warmup_s)
                  for impl in FLAGS.conv_impl for spc in steps_per_call]
        ref = (TorchStep(workload, batch, dtype, FLAGS.torch_keep_freed_memory)
               if FLAGS.torch else None)
        for _ in range(FLAGS.windows):  # the configurations and PyTorch take turns
          for timer in timers + ([ref] if ref else []):
            timer.window(FLAGS.window_seconds)
        records = [t.record() for t in timers]
        if ref:
          theirs = ref.record()
          for r in records:
            r["torch_steps_per_sec"] = theirs["steps_per_sec"]
            r["speedup_vs_torch"] = round(r["steps_per_sec"] / theirs["steps_per_sec"], 3)
          records.append(theirs)
        for r in records:
          emit(r)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
