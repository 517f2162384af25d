"""The speed-ups keep the math: several steps per call equal one step per call, a run compiles
each phase once, mixed precision keeps float32 state, and the allocator setting takes effect."""

import dataclasses
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import parallel, strategies, train
from aegan_jax.data import pipeline
from aegan_jax.checkpoint import Checkpointer
from tests.conftest import run_module


def _close(a, b, rtol=1e-5, atol=1e-6):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64),
                               rtol=rtol, atol=atol)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_several_steps_per_call_equal_one_step_per_call(tiny, mnist5k, arch):
  config = tiny(strategy="gan", arch=arch, dcgan_channels=4, batch_size=16)
  strategy = strategies.build(config, mnist5k.spec)
  dp = parallel.DataParallel.create()
  data = dp.replicate(mnist5k.train)
  perm = pipeline.epoch_permutation(jax.random.key(1), 0, mnist5k.num_train)
  one = train.compile_phase(config, strategy, "gan", mnist5k.spec, dp)
  two = train.compile_phase(config, strategy, "gan", mnist5k.spec, dp, steps_per_call=2)

  state, singles = strategy.init(jax.random.key(0)), []
  for _ in range(4):
    state, metrics = one(state, data, perm, {})
    singles.append(metrics)
  chunked_state, chunks = strategy.init(jax.random.key(0)), []
  for _ in range(2):
    chunked_state, metrics = two(chunked_state, data, perm, {})
    chunks.append(metrics)

  assert int(chunked_state.step) == int(state.step) == 4
  join = lambda ms: {k: np.concatenate([np.asarray(m[k]) for m in ms]) for k in ms[0]}
  assert join(chunks)["d_loss"].shape == (4,)
  _close(join(singles), join(chunks))
  _close(state.params, chunked_state.params)
  _close(state.opt_state, chunked_state.opt_state)


def _run_dir_summary(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  ckpt = Checkpointer(workdir, keep=10)
  return rows, ckpt, ckpt.latest_step()


def test_trainer_with_steps_per_call_matches_one_step_per_call(tiny, tmp_path, mnist5k):
  # Phase and interval boundaries that chunks of 4 do not divide: 7 pretraining steps, then
  # logs every 5, checkpoints and samples every 6.
  base = dict(steps=12, pretrain_steps=7, log_every=5, checkpoint_every=6, sample_every=6,
              eval_every=0)
  ref_dir, fast_dir = str(tmp_path / "one"), str(tmp_path / "four")
  train.train_and_evaluate(tiny(**base), ref_dir)
  train.train_and_evaluate(tiny(**base, steps_per_call=4), fast_dir)

  ref_rows, ref_ckpt, ref_last = _run_dir_summary(ref_dir)
  rows, ckpt, last = _run_dir_summary(fast_dir)
  assert last == ref_last == 19
  assert [(r["step"], r["phase"]) for r in rows] == [(r["step"], r["phase"]) for r in ref_rows]
  for a, b in zip(ref_rows, rows):
    for k, v in a.items():
      if k not in ("step", "phase", "steps_per_sec") and isinstance(v, float):
        np.testing.assert_allclose(b[k], v, rtol=1e-4, atol=1e-6, err_msg=k)
  assert sorted(os.listdir(os.path.join(fast_dir, "samples"))) == sorted(
      os.listdir(os.path.join(ref_dir, "samples")))
  strategy = strategies.build(tiny(**base), mnist5k.spec)
  abstract = jax.eval_shape(strategy.init, jax.random.key(0))
  _close(ref_ckpt.restore(19, abstract).params, ckpt.restore(19, abstract).params,
         rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("steps_per_call", [1, 3])
def test_a_run_compiles_each_phase_once(tiny, tmp_path, monkeypatch, steps_per_call):
  """No recompilation after the first step, across epochs, logs, saves and samples: every
  phase step is wrapped in chex.assert_max_traces, which raises on a second trace."""
  build = strategies.build

  def build_checked(config, spec, **kw):
    s = build(config, spec, **kw)
    # One trace for the single-step call, one inside the chunked call (when there is one).
    n = 1 if steps_per_call == 1 else 2

    def counted(phase):
      def traced_step(state, batch):
        return phase.step(state, batch)
      traced_step.__name__ = phase.name  # chex counts by name and source: one count a phase
      return dataclasses.replace(phase, step=chex.assert_max_traces(traced_step, n=n))
    return dataclasses.replace(s, phases=tuple(counted(p) for p in s.phases))

  chex.clear_trace_counter()
  monkeypatch.setattr(train.strategies, "build", build_checked)
  # 4,500 training digits at batch 1,024: an epoch is 4 steps, so the 14 steps span 4 epochs.
  config = tiny(batch_size=1024, pretrain_steps=6, steps=8, log_every=2, checkpoint_every=4,
                sample_every=4, eval_every=0, steps_per_call=steps_per_call)
  states = train.train_population([config], [str(tmp_path)])
  assert int(states[0].step) == 14


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_bfloat16_computes_in_bfloat16_and_keeps_float32_state(tiny, mnist5k, arch):
  f32 = tiny(strategy="gan", arch=arch, dcgan_channels=8, batch_size=16)
  bf16 = f32.replace(dtype="bfloat16")
  batch = pipeline.batch_at(mnist5k.train, jax.random.key(7), jnp.int32(0), 16)
  results = {}
  for config in (f32, bf16):
    strategy = strategies.build(config, mnist5k.spec)
    state = strategy.init(jax.random.key(0))
    step = strategy.phases[0].step
    text = str(jax.make_jaxpr(step)(state, batch))
    results[config.dtype] = (jax.jit(step)(state, batch), "bf16[" in text)
  (state32, m32), uses_bf16_32 = results["float32"]
  (state16, m16), uses_bf16_16 = results["bfloat16"]
  assert uses_bf16_16 and not uses_bf16_32
  # Parameters, optimizer moments and batch statistics stay float32, and so do the losses.
  assert jax.tree.structure(state16) == jax.tree.structure(state32)
  for leaf in jax.tree.leaves(state16):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32
  for k, v in m16.items():
    assert v.dtype == jnp.float32 and np.isfinite(np.asarray(v)).all(), k
  # The same step to bfloat16's precision (8 bits of mantissa), and not bit-identical.
  np.testing.assert_allclose(float(m16["d_loss"]), float(m32["d_loss"]), rtol=5e-2)
  np.testing.assert_allclose(float(m16["g_loss"]), float(m32["g_loss"]), rtol=5e-2)
  assert float(m16["d_loss"]) != float(m32["d_loss"])


def test_keep_freed_memory_stops_page_faults_per_allocation():
  # malloc, touch and free 40 MB at a time, as XLA:CPU does with a step's buffers.
  code = """
import ctypes, resource
from aegan_jax.cpu import allocator

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
SIZE = 40 << 20  # above glibc's largest mmap threshold (32 MB): mapped afresh by default

def faults():
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(10):
    p = libc.malloc(SIZE)
    ctypes.memset(p, 1, SIZE)
    libc.free(p)
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

plain = faults()
ok = allocator.keep_freed_memory()
faults()  # the first allocations after the switch grow the heap
print(ok, plain, faults())
"""
  out = run_module("tests._run_code", code)
  assert out.returncode == 0, out.stderr
  ok, plain, kept = out.stdout.split()
  if ok != "True":
    pytest.skip("not glibc: the allocator setting does not apply")
  assert int(plain) > 10 * 5000  # ~10,000 fresh pages per 40 MB allocation
  assert int(kept) < int(plain) / 20


def test_large_step_temporaries_are_kept_too():
  # Three 32 MB products alive at once: XLA asks for ~96 MB of temporaries per call, more than
  # a glibc thread heap, so they were mapped afresh each call until split (aegan_jax/cpu/allocator.py).
  code = """
import resource
from aegan_jax.cpu import allocator
ok = allocator.keep_freed_memory()
import jax, jax.numpy as jnp, numpy as np

def fn(x, w):
  a, b, c = x @ w[0], x @ w[1], x @ w[2]  # each read by two reductions: materialized
  return (a * b).sum(axis=0) + (b * c).max(axis=0), (c * a).sum(axis=1) + (a - b).min(axis=1)

x = jnp.asarray(np.random.default_rng(0).normal(size=(8192, 64)), jnp.float32)
w = jnp.asarray(np.random.default_rng(1).normal(size=(3, 64, 1024)), jnp.float32)

# The median over calls: now and then a call's thread takes another malloc arena, which faults
# until that arena's heaps have grown too.
def faults(f):
  for _ in range(3):
    jax.block_until_ready(f(x, w))
  per_call = []
  for _ in range(9):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out = jax.block_until_ready(f(x, w))
    per_call.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
  return sorted(per_call)[4], out

plain, want = faults(jax.jit(fn))
split, got = faults(jax.jit(fn, compiler_options=allocator.xla_compiler_options("cpu")))
same = all((np.asarray(g) == np.asarray(h)).all() for g, h in zip(got, want))
print(ok, allocator.xla_compiler_options("gpu") == {}, plain, split, same)
"""
  out = run_module("tests._run_code", code)
  assert out.returncode == 0, out.stderr
  ok, gpu_untouched, plain, split, equal = out.stdout.split()
  if ok != "True":
    pytest.skip("not glibc: the allocator setting does not apply")
  assert gpu_untouched == "True" and equal == "True"
  assert int(plain) > 15000  # ~24,000 fresh pages per call
  assert int(split) < int(plain) / 20


def test_unrolled_threefry_draws_the_same_bits_without_a_loop():
  code = """
import jax
import numpy as np
from aegan_jax.cpu import threefry

def draw():
  f = jax.jit(lambda k: (jax.random.normal(jax.random.fold_in(k, 7), (64, 64)),
                         jax.random.key_data(jax.random.split(k, 5)),
                         jax.random.permutation(k, 4500)))
  k = jax.random.key(3)
  return [np.asarray(a) for a in f(k)], "while" in f.lower(k).compile().as_text()

rolled, rolled_loop = draw()
took = threefry.unroll_threefry_on_cpu()
jax.clear_caches()
unrolled, unrolled_loop = draw()
print(took, rolled_loop, unrolled_loop, all(np.array_equal(a, b) for a, b in zip(rolled, unrolled)))
"""
  out = run_module("tests._run_code", code)
  assert out.returncode == 0, out.stderr[-2000:]
  took, rolled_loop, unrolled_loop, same = out.stdout.split()
  if took != "True":
    pytest.skip("this JAX version keeps threefry's lowering elsewhere")
  assert (rolled_loop, unrolled_loop, same) == ("True", "False", "True")


def test_importing_the_library_changes_nothing_until_cpu_enable():
  code = """
import jax
from aegan_jax import cli, cpu, train  # everything an entry point imports
from aegan_jax.cpu import allocator, threefry
before = (allocator.KEEPING_FREED_MEMORY, threefry._done, cpu.compiler_options("cpu"))
took = cpu.enable()
print(before == (False, False, {}), took["threefry_unrolled"], took["keeps_freed_memory"],
      cpu.compiler_options("cpu") != {} or not took["keeps_freed_memory"])
"""
  out = run_module("tests._run_code", code)
  assert out.returncode == 0, out.stderr[-2000:]
  untouched, unrolled, kept, options = out.stdout.split()
  assert untouched == "True" and options == "True"
  assert unrolled == "True" or pytest.skip("this JAX version keeps threefry's lowering elsewhere")
