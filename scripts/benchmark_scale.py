"""How training scales: K-member populations against K sequential runs, and devices (JSON).

  python -m scripts.benchmark_scale
  python -m scripts.benchmark_scale --steps=2000 --population_sizes=1,4,16 \
      --configs=preset,small --device_counts=1,2,4,8 --out=runs/benchmark_scale/results.jsonl
  python -m scripts.benchmark_scale --parts=devices --dcgan_steps=0   # one part, no dcgan

Every figure is one JSON object per line on stdout, and the same lines go to --out.

1. Population throughput (`"part": "population"`, one line per network config and K). The task
   is the 2-D grid with the plain GAN; `preset` is the networks of
   experiments/presets/mixture2d.flags (mlp 128,128, batch 256, latent and code 8), `small` the
   same with mlp 32 and batch 64. Evaluation is off; a checkpoint and a picture are written at
   the end only. For K runs with seeds 0..K-1:
     sequential: K calls of train.train_and_evaluate, one after another in this process. The
       max(K) runs are all really run and each is timed on its own; the K-row reports the
       first K of them (seeds 0..K-1), so its wall time is a sum of measured runs, not an
       extrapolation.
     population: one train.train_members(config, workdir, K), all K in one vmapped program.
   Each measurement trains in a fresh temporary workdir, deleted once its metrics are read.
2. Device scaling (`"part": "devices"`, one line per device count): one data-parallel run of the
   preset (global batch 256) over n devices, and, with --dcgan_steps > 0, the dcgan networks
   (16 base channels, batch 64) on mnist5k. On CPU the n devices are XLA's forced host devices,
   which exist only if XLA_FLAGS is set before JAX starts, so each count runs in a fresh
   interpreter (the internal flag --_devices_child). Forced host devices share the same cores:
   on a 2-core machine they measure the cost of the sharding (collectives, smaller per-device
   work), not a speedup. On an accelerator machine the children use the first n real devices,
   and counts above what exists are reported as skipped. A child has no warm-up run, so its
   wall_s holds the fresh interpreter's one-time costs too: compare its steps/s.
3. A summary line (`"part": "summary"`): per config the speedup at K=16 and whether it meets the
   target of the issue (K=16 at least 8x faster than 16 sequential runs on 2 CPU cores), and
   the device table.

How to read the figures:
  wall_s: perf_counter around the train call: start-up, compilation, training and the final
    checkpoint and picture (per member), i.e. what a researcher waits for. Imports and a
    warm-up run happen before any clock starts.
  steps_per_s: steady state, the median over the metrics.jsonl windows (log_every = steps/10)
    after dropping each phase's first window, which holds the compilation. For a population
    every member logs the same rate (one program), and member_steps_per_s = K * steps_per_s;
    for sequential runs, which cannot overlap, member_steps_per_s is the single-run rate.
  overhead_s = wall_s - steps / steps_per_s (summed over the runs for sequential): the part of
    the wall time that is not steady-state training (start-up, compilation, per-member outputs,
    and slower windows such as those holding an epoch's new permutation).
  speedup_wall = sequential wall_s / population wall_s; speedup_steady = population
    member_steps_per_s / sequential member_steps_per_s.
  In the summary, sequential_overhead_per_run_s is a single run's overhead_s, and
  population_overhead_per_extra_member_s the growth of a population's overhead_s per member
  between the smallest and the largest K (each member's init, final picture, checkpoint and
  metrics are written one by one): the two costs that steady-state throughput does not show.
"""

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Iterator

from absl import flags
from absl import logging

from aegan_jax import cli


def define_flags() -> None:
  """Defined when run, not on import: the test imports this module beside other scripts whose
  flags share names (--out, --steps)."""
  flags.DEFINE_integer("steps", 2000, "Training steps of every measured run.")
  flags.DEFINE_list("population_sizes", ["1", "4", "16"], "Population sizes K to measure.")
  flags.DEFINE_list("configs", ["preset", "small"], "Network configs of the population part: "
                    "preset (mixture2d: mlp 128,128, batch 256) and/or small (mlp 32, batch 64).")
  flags.DEFINE_list("device_counts", ["1", "2", "4", "8"], "Device counts of the devices part.")
  flags.DEFINE_integer("dcgan_steps", 200, "Steps of the dcgan/mnist5k run of the devices part "
                       "(slow on CPU, hence its own count); 0 = leave it out.")
  flags.DEFINE_list("parts", ["population", "devices"], "Which parts to run: population, devices.")
  flags.DEFINE_string("out", "runs/benchmark_scale/results.jsonl", "JSON lines written here too.")
  flags.DEFINE_integer("_devices_child", 0, "Internal: run the devices part's measurement on this "
                       "many devices and print one JSON line (the parent sets XLA_FLAGS first).")


FLAGS = flags.FLAGS

# The 2-D grid task: the plain GAN, and the mixture2d preset's latent/code sizes.
TASK = dict(strategy="gan", dataset="grid", arch="mlp", latent_dim=8, code_dim=8)
CONFIGS = {
    "preset": dict(TASK, mlp_hidden=(128, 128), batch_size=256),  # mixture2d.flags' networks
    "small": dict(TASK, mlp_hidden=(32,), batch_size=64),
}
DCGAN = dict(strategy="gan", dataset="mnist5k", arch="dcgan", dcgan_channels=16, latent_dim=16,
             batch_size=64)
PARTS = ("population", "devices")
TARGET_K, TARGET_SPEEDUP = 16, 8.0


def make_config(fields: dict, steps: int, seed: int = 0, max_log_every: int = 0, **extra):
  """A measured run: eval off, ~10 log windows (or more, if capped), a checkpoint and a picture
  at the end only."""
  from aegan_jax.config import Config
  log_every = max(1, steps // 10)
  if max_log_every:
    log_every = min(log_every, max_log_every)
  return Config(**fields, **extra, steps=steps, seed=seed, log_every=log_every,
                sample_every=steps, checkpoint_every=steps, eval_every=0)


def flag_string(fields: dict) -> str:
  return " ".join(f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
                  for k, v in fields.items())


def steady_rate(metrics_path: str) -> float:
  """Median steps/s of a run's log windows, without each phase's first (compiling) window."""
  with open(metrics_path) as f:
    records = [r for r in map(json.loads, filter(str.strip, f)) if "steps_per_sec" in r]
  seen, rates = set(), []
  for r in records:
    if r["phase"] in seen:
      rates.append(r["steps_per_sec"])
    seen.add(r["phase"])
  if not rates:
    raise cli.UserError(f"{metrics_path} has no log window after the first; raise --steps")
  return statistics.median(rates)


def timed(train_fn: Callable[[str], None], metrics_subpath: str = "") -> tuple[float, float]:
  """(wall seconds, steady steps/s) of train_fn(workdir) in a fresh temporary workdir."""
  workdir = tempfile.mkdtemp(prefix="benchmark_scale_")
  try:
    start = time.perf_counter()
    train_fn(workdir)
    wall = time.perf_counter() - start
    return wall, steady_rate(os.path.join(workdir, metrics_subpath, "metrics.jsonl"))
  finally:
    shutil.rmtree(workdir, ignore_errors=True)


def environment() -> dict:
  import jax
  return {"device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
          "backend": jax.default_backend(), "cpu_count": os.cpu_count(), "jax": jax.__version__}


def population_rows(name: str, sizes: list[int], steps: int) -> Iterator[dict]:
  """One row per K: sequential single runs against one vmapped population of K."""
  from aegan_jax import train
  fields = CONFIGS[name]
  # Untimed warm-up: one-time process costs (lazy imports of matplotlib, tensorboardX and
  # orbax, thread pools) would otherwise land on whichever measurement comes first.
  timed(lambda w: train.train_and_evaluate(make_config(fields, 20), w))
  walls, rates = [], []
  for seed in range(max(sizes)):
    wall, rate = timed(lambda w: train.train_and_evaluate(make_config(fields, steps, seed), w))
    walls.append(wall)
    rates.append(rate)
    logging.warning("%s sequential seed %d: %.2f s, %.1f steps/s", name, seed, wall, rate)
  env = environment()
  for k in sizes:
    pop_wall, pop_rate = timed(lambda w: train.train_members(make_config(fields, steps), w, k),
                               "member_00")
    logging.warning("%s population K=%d: %.2f s, %.1f steps/s", name, k, pop_wall, pop_rate)
    seq_wall = sum(walls[:k])
    seq_member_rate = statistics.median(rates[:k])
    seq_overhead = sum(w - steps / r for w, r in zip(walls[:k], rates[:k]))
    yield {
        "benchmark": "scale", "part": "population", "config": name, "K": k, "steps": steps,
        "sequential": {
            "wall_s": round(seq_wall, 3), "runs": k,
            "runs_wall_s": [round(w, 3) for w in walls[:k]],
            "runs_steps_per_s": [round(r, 1) for r in rates[:k]],
            "member_steps_per_s": round(seq_member_rate, 1),
            "overhead_s": round(seq_overhead, 3),
            "how": f"seeds 0..{k - 1}, each really run and timed; wall_s is the sum"},
        "population": {
            "wall_s": round(pop_wall, 3), "steps_per_s": round(pop_rate, 1),
            "member_steps_per_s": round(k * pop_rate, 1),
            "overhead_s": round(pop_wall - steps / pop_rate, 3)},
        "speedup_wall": round(seq_wall / pop_wall, 3),
        "speedup_steady": round(k * pop_rate / seq_member_rate, 3),
        **env, "config_flags": flag_string(fields) + f" --steps={steps} --eval_every=0"}


def devices_child(n: int, steps: int, dcgan_steps: int) -> dict:
  """In a fresh interpreter: steady steps/s of data-parallel runs over n devices."""
  import jax
  from aegan_jax import parallel, train
  available = jax.devices()
  if len(available) < n:
    raise cli.UserError(f"asked for {n} devices, {len(available)} exist here (on CPU the parent "
                        f"sets XLA_FLAGS=--xla_force_host_platform_device_count)")
  dp = parallel.DataParallel.create(available[:n])
  workloads = [("preset", CONFIGS["preset"], steps, {})]
  if dcgan_steps:
    from aegan_jax.data import tfds_source
    data_dir = tempfile.mkdtemp(prefix="benchmark_scale_tfds_")
    tfds_source.ensure_prepared("mnist5k", data_dir, auto_prepare=True)
    workloads.append(("dcgan_mnist5k", DCGAN, dcgan_steps, {"data_dir": data_dir}))
  result = {"benchmark": "scale", "part": "devices", "devices": dp.num_devices, **environment()}
  try:
    for name, fields, n_steps, extra in workloads:
      config = make_config(fields, n_steps, **extra)
      wall, rate = timed(lambda w: train.train_and_evaluate(config, w, dp))
      result[name] = {"steps": n_steps, "batch_size": fields["batch_size"],
                      "log_every": config.log_every,
                      "wall_s": round(wall, 3), "steps_per_s": round(rate, 1),
                      "examples_per_s": round(rate * fields["batch_size"], 1),
                      "config_flags": flag_string(fields) + f" --steps={n_steps} --eval_every=0"}
  finally:
    if dcgan_steps:
      shutil.rmtree(data_dir, ignore_errors=True)
  return result


def device_rows(counts: list[int], steps: int, dcgan_steps: int,
                log_dir: str) -> Iterator[dict]:
  """One fresh interpreter per device count (forced CPU devices exist only from JAX's start)."""
  import jax
  on_cpu = jax.default_backend() == "cpu"
  for n in counts:
    env = dict(os.environ)
    if on_cpu:
      # No accelerator here: keep the children off any other platform, and give them n devices.
      kept = [f for f in env.get("XLA_FLAGS", "").split()
              if not f.startswith("--xla_force_host_platform_device_count")]
      env["XLA_FLAGS"] = " ".join(kept + [f"--xla_force_host_platform_device_count={n}"])
      env["JAX_PLATFORMS"] = "cpu"
    elif n > jax.device_count():
      yield {"benchmark": "scale", "part": "devices", "devices": n,
             "skipped": f"only {jax.device_count()} {jax.default_backend()} devices"}
      continue
    cmd = [sys.executable, "-m", "scripts.benchmark_scale", f"--_devices_child={n}",
           f"--steps={steps}", f"--dcgan_steps={dcgan_steps}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
      # The child's stderr is mostly Python's thread dump after an XLA abort: keep it whole in a
      # file, and put XLA's own error lines (glog E/F) in the message.
      path = os.path.join(log_dir, f"devices_{n}.stderr")
      with open(path, "w") as f:
        f.write(proc.stderr)
      xla = [line for line in proc.stderr.splitlines() if line[:1] in "EF" and line[1:5].isdigit()]
      raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}); stderr in {path}:\n"
                         + "\n".join(xla[-5:] or proc.stderr.splitlines()[-20:]))
    row = json.loads(lines[-1])
    yield row


def summary(rows: list[dict], command: str) -> dict:
  pop = {}
  for name in dict.fromkeys(r["config"] for r in rows if r["part"] == "population"):
    mine = sorted((r for r in rows if r.get("config") == name), key=lambda r: r["K"])
    entry = {}
    for r in mine:
      if r["K"] == TARGET_K:
        entry.update(K=r["K"], speedup_wall=r["speedup_wall"], speedup_steady=r["speedup_steady"],
                     target_8x_met=r["speedup_wall"] >= TARGET_SPEEDUP,
                     target_8x_met_steady=r["speedup_steady"] >= TARGET_SPEEDUP)
    # Where the wall time goes besides training: a sequential run's own start-up and outputs,
    # and what each extra population member adds (its picture, checkpoint, metrics, init).
    last = mine[-1]
    entry["sequential_overhead_per_run_s"] = round(
        last["sequential"]["overhead_s"] / last["sequential"]["runs"], 3)
    if len(mine) > 1:
      entry["population_overhead_per_extra_member_s"] = round(
          (last["population"]["overhead_s"] - mine[0]["population"]["overhead_s"])
          / (last["K"] - mine[0]["K"]), 3)
    pop[name] = entry
  devices = [r for r in rows if r["part"] == "devices"]
  base = {}
  for r in devices:
    if r.get("devices") == 1:
      base = r
  table = []
  for r in devices:
    if "skipped" in r:
      table.append({"devices": r["devices"], "skipped": r["skipped"]})
      continue
    entry = {"devices": r["devices"]}
    for name in ("preset", "dcgan_mnist5k"):
      if name in r:
        entry[name] = {"steps_per_s": r[name]["steps_per_s"],
                       "examples_per_s": r[name]["examples_per_s"]}
        if name in base:
          entry[name]["relative_to_1_device"] = round(
              r[name]["steps_per_s"] / base[name]["steps_per_s"], 3)
    table.append(entry)
  note = (f"target: K={TARGET_K} at least {TARGET_SPEEDUP:g}x faster in wall time than "
          f"{TARGET_K} sequential runs (2 CPU cores, 2-D grid)"
          if any("target_8x_met" in e for e in pop.values())
          else f"K={TARGET_K} not measured: no target verdict")
  return {"benchmark": "scale", "part": "summary", "population": pop, "population_note": note,
          "devices": table, "command": command}


def int_list(name: str, values: list[str]) -> list[int]:
  try:
    out = [int(v) for v in values]
  except ValueError:
    raise cli.UserError(f"--{name} must be comma-separated positive integers, got "
                        f"{','.join(values)}") from None
  if not out or any(v <= 0 for v in out):
    raise cli.UserError(f"--{name} must be comma-separated positive integers, got "
                        f"{','.join(values)}")
  return sorted(set(out))


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are --name=value")
  if FLAGS.steps < 10:
    raise cli.UserError(f"--steps must be at least 10 (10 log windows), got {FLAGS.steps}")
  if FLAGS.dcgan_steps < 0 or 0 < FLAGS.dcgan_steps < 10:
    raise cli.UserError(f"--dcgan_steps must be 0 (off) or at least 10, got {FLAGS.dcgan_steps}")
  if FLAGS._devices_child:
    print(json.dumps(devices_child(FLAGS._devices_child, FLAGS.steps, FLAGS.dcgan_steps)))
    return
  parts = set(FLAGS.parts)
  if not parts or parts - set(PARTS):
    raise cli.UserError(f"--parts takes {' and/or '.join(PARTS)}, got {','.join(FLAGS.parts)}")
  sizes = int_list("population_sizes", FLAGS.population_sizes)
  counts = int_list("device_counts", FLAGS.device_counts)
  unknown = [c for c in FLAGS.configs if c not in CONFIGS]
  if not FLAGS.configs or unknown:
    raise cli.UserError(f"--configs takes {' and/or '.join(CONFIGS)}, got "
                        f"{','.join(FLAGS.configs)}")
  batches = [CONFIGS["preset"]["batch_size"]] + ([DCGAN["batch_size"]] if FLAGS.dcgan_steps else [])
  for n in counts:  # the global batches must split evenly over the devices
    for batch in batches:
      if "devices" in parts and batch % n:
        raise cli.UserError(f"--device_counts: {n} does not divide the global batch {batch}; "
                            f"use divisors such as 1,2,4,8")

  command = " ".join(["python -m scripts.benchmark_scale", *map(shlex.quote, sys.argv[1:])])
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  rows = []
  with open(FLAGS.out, "w") as out:
    def emit(row):  # as each figure comes, so an interrupted run keeps what it measured
      rows.append(row)
      line = json.dumps(row)
      print(line, flush=True)
      out.write(line + "\n")
      out.flush()
    if "population" in parts:
      for name in FLAGS.configs:
        for row in population_rows(name, sizes, FLAGS.steps):
          emit(row)
    if "devices" in parts:
      log_dir = os.path.dirname(os.path.abspath(FLAGS.out))
      for row in device_rows(counts, FLAGS.steps, FLAGS.dcgan_steps, log_dir):
        emit(row)
    emit(summary(rows, command))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
