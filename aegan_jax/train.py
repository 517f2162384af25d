"""train_and_evaluate(config, workdir): data in, phases of jit-compiled steps, outputs out.

The loop is generic: the strategy says which pure step runs at each step index, and this
module owns everything around it: the device-resident batches, checkpoints and resume,
metrics/TensorBoard/PNG outputs, progress with ETA, SIGTERM, and stopping on a non-finite loss.

Read `_train_locked` top to bottom: set-up (refuse, load, restore or init), then `while step <
total:` the compiled step and the periodic actions, each a small object (`_Schedule` picks the
compiled function, `_DataOrder` the epoch order, `_Log` fetches and checks the metrics,
`_Outputs` writes grids and evaluations), then the end of the run. A population is `_Runs`:
it stacks, splits and places the members' states around the same loop.
"""

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import signal
import time
from typing import Optional

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from aegan_jax import config as config_lib
from aegan_jax import lock as lock_lib
from aegan_jax import data as data_lib
from aegan_jax import cpu, evaluation, parallel, storage, strategies, writers
from aegan_jax import model as model_lib
from aegan_jax import population as population_lib
from aegan_jax import progress as progress_lib
from aegan_jax.checkpoint import Checkpointer
from aegan_jax.data import pipeline
from aegan_jax.errors import UserError
from aegan_jax.losses import ADVERSARIAL
from aegan_jax.models import ARCHS
from aegan_jax.state import TrainState
from aegan_jax.strategies.base import Phase, Strategy


# Sub-keys of the run's root key, one per purpose (fold_in constants, never reused).
_DATA_KEY, _SAMPLE_KEY, _RECON_KEY = 1001, 1002, 1003
_MAX_IN_FLIGHT = 8  # calls dispatched ahead of the host


class TrainingDiverged(UserError):
  """A loss or gradient became NaN/inf; the message names the step and the last checkpoint."""


def check_names(config: config_lib.Config) -> None:
  """Looks every name up before anything is loaded or written, so typos fail at once."""
  data_lib.DATASETS.get(config.dataset)
  ARCHS.get(config.arch)
  ADVERSARIAL.get(config.loss)
  strategies.check(config)


class _StopFlag:
  """Set by SIGTERM: the loop saves a checkpoint at the next step and exits."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread (e.g. inside a test runner thread)
      self._previous = None
    return self

  def _handle(self, signum, frame):
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def compile_phase(config: config_lib.Config, strategy: Strategy, phase_name: str, spec,
                  dp: parallel.DataParallel, *, population: int = 1,
                  traced: tuple[str, ...] = (), spread: bool = False, steps_per_call: int = 1):
  """`steps_per_call` steps of phase `phase_name`, jitted once, the state donated.

  Returns fn(state, data, perm, hparams) -> (state, metrics), each metric with a leading axis
  of `steps_per_call` (then [population] for a population). The step is fused with the batch
  gather from the device-resident `data` by this epoch's `perm` (each device gathers only its
  rows of the global batch); the generator's EMA is part of the step. Several steps per call
  are a lax.scan over the same step: the same computation, without the per-step dispatch, so a
  chunk must not cross an epoch boundary (the trainer sees to it). A population: the step
  under jax.vmap over (state, permutation, hyperparameters), the varying float fields of the
  config being traced values (aegan_jax/population.py). `spread`: the members, not the
  batches, are split over the devices (each device trains whole members: no communication).
  """
  def one(state: TrainState, data, perm, hparams):
    strat = (strategies.build(config.replace(**hparams), spec, checked=True) if hparams
             else strategy)
    phase = next(p for p in strat.phases if p.name == phase_name)
    batch = pipeline.batch_from_permutation(data, perm, state.step, config.samples_per_step)
    if not spread:
      batch = dp.shard_batch(batch)
    return phase.step(state, batch)  # the generator's EMA included (strategies/base.py)

  step = one if population == 1 else jax.vmap(one, in_axes=(0, None, 0, 0))

  def run(state, data, perm, hparams):
    with jax.sharding.use_abstract_mesh(dp.mesh.abstract_mesh):  # what the layers trace for
      return run_steps(state, data, perm, hparams)

  def run_steps(state, data, perm, hparams):
    if steps_per_call == 1:
      state, metrics = step(state, data, perm, hparams)
      return state, jax.tree.map(lambda m: m[None], metrics)
    # Unrolled on CPU: XLA:CPU compiles a convolution inside a loop body through a generic
    # path (the dcgan step ran 25x slower in a rolled scan). Elsewhere the loop stays rolled,
    # so compile time does not grow with steps_per_call.
    return jax.lax.scan(lambda s, _: step(s, data, perm, hparams), state,
                        length=steps_per_call, unroll=jax.default_backend() == "cpu")

  return jax.jit(run, donate_argnums=(0,),
                 out_shardings=(dp.batch if spread else dp.replicated, dp.replicated),
                 compiler_options=cpu.compiler_options(jax.default_backend()))


def _heldout_reconstruction(strategy: Strategy, state: TrainState, dataset: data_lib.Dataset,
                            key: jax.Array, workdir: str, writer: writers.MetricWriter,
                            step: int, chief: bool = True) -> float:
  """Held-out reconstruction MSE (pixels in [0, 1]) and a real-vs-reconstructed grid."""
  recon = jax.jit(strategy.reconstruct)
  errors = []
  for start in range(0, len(dataset.test_images), 1000):
    x = pipeline.to_float(jnp.asarray(dataset.test_images[start:start + 1000]))
    errors.append(np.asarray(jnp.mean(jnp.square(recon(state, x, key) - x),
                                      axis=tuple(range(1, x.ndim)))))
  mse = float(np.mean(np.concatenate(errors)))
  writer.write(step, "pretrain_eval", {"heldout_recon_mse": mse})
  if x.ndim != 4:  # no picture of reconstructed points
    return mse
  x = pipeline.to_float(jnp.asarray(dataset.test_images[:50]))
  r = np.asarray(recon(state, x, key))
  x = np.asarray(x)
  rows = [a[i * 10:(i + 1) * 10] for i in range(5) for a in (x, r)]  # real row, its reconstruction
  picture = writers.image_grid(np.concatenate(rows), rows=10)
  if not chief:
    return mse
  writers.save_png(os.path.join(workdir, "samples", "reconstruction.png"), picture,
                   caption=f"step {step}: held-out images (rows 1, 3, 5, 7, 9) and their\n"
                           f"reconstructions (the row below each); held-out MSE {mse:.4f}")
  writer.write_image(step, "reconstruction", picture)
  return mse


def _make_evaluator(config: config_lib.Config, dataset) -> Optional[evaluation.Evaluator]:
  """The in-training evaluator, or None (off, or nothing fits; 'auto' then says why once)."""
  if not config.eval_every or not config.eval_metrics.strip():
    return None
  data_dir = data_lib.tfds_source.resolve_data_dir(config.data_dir)
  metrics, note = evaluation.resolve_metrics(config.eval_metrics, config.dataset, data_dir,
                                             config.inception_weights, during_training=True)
  if note:
    logging.info("Evaluation during training: none (%s).", note)
  if not metrics:
    return None
  # 'auto' keeps the periodic evaluations cheap and measures everything that fits at the end.
  final = (evaluation.resolve_metrics("auto", config.dataset, data_dir, config.inception_weights)[0]
           if config.eval_metrics.strip() == "auto" else metrics)
  logging.info("Evaluating %s every %d steps, %s at the end.", ",".join(metrics),
               config.eval_every, ",".join(final))
  return evaluation.Evaluator(dataset, metrics, data_dir, config.eval_samples,
                              config.inception_weights, config.classifier_steps or None,
                              final_metrics=final)


@dataclasses.dataclass
class _Member:
  """One run of a (possibly one-member) population: its config and everything it writes."""
  config: config_lib.Config
  workdir: str
  strategy: Strategy
  ckpt: Checkpointer
  writer: writers.MetricWriter
  last_good: Optional[int] = None
  evaluation: Optional[dict] = None  # the final evaluation, for summary.json

  @property
  def root(self) -> jax.Array:
    # Made afresh each time: the state's rng may alias the key's buffer, and the state is donated.
    return jax.random.key(self.config.seed)

  def key(self, purpose: int) -> jax.Array:
    return jax.random.fold_in(self.root, purpose)


def dry_run(config: config_lib.Config) -> dict:
  """--dry_run: validates, loads the data, builds the strategy and compiles its first phase's
  step on abstract inputs; writes nothing. Returns what it found (printed as JSON)."""
  config = config_lib.validate(config)
  check_names(config)
  dataset = data_lib.load(config.dataset, config.data_dir)
  data_lib.check_batch_size(dataset, config.batch_size, config.pack)
  strategy = strategies.build(config, dataset.spec, checked=True)
  state = jax.eval_shape(strategy.init, jax.random.key(config.seed))
  params = {name: int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(tree)))
            for name, tree in state.params.items()}
  batch = {"image": jax.ShapeDtypeStruct((config.batch_size, *dataset.spec.shape), jnp.float32),
           "label": jax.ShapeDtypeStruct((config.batch_size,), jnp.int32)}
  first = strategy.phases[0]
  start = time.perf_counter()
  jax.jit(first.step).lower(state, batch).compile()
  return {"strategy": config.strategy, "arch": config.arch, "dataset": config.dataset,
          "example_shape": list(dataset.spec.shape), "num_train": dataset.num_train,
          "parameters": params,
          "phases": [{"name": p.name, "steps": p.num_steps} for p in strategy.phases],
          "compiled": first.name, "compile_s": round(time.perf_counter() - start, 2),
          "devices": jax.device_count()}


def train_and_evaluate(config: config_lib.Config, workdir: str,
                       dp: Optional[parallel.DataParallel] = None) -> TrainState:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final state."""
  return train_population([config], [workdir], dp=dp)[0]


def train_members(config: config_lib.Config, workdir: str, size: int, vary: str = "",
                  dp: Optional[parallel.DataParallel] = None) -> list[TrainState]:
  """--population=size [--population_vary=vary]: the members in workdir/member_NN."""
  config_lib.validate(config)  # refused before population.json is written
  configs, traced = population_lib.member_configs(config, size, vary)
  workdirs = [os.path.join(os.path.abspath(workdir), f"member_{i:02d}") for i in range(size)]
  listing = [{"workdir": os.path.basename(w), "seed": c.seed, **{k: getattr(c, k) for k in traced}}
             for c, w in zip(configs, workdirs)]
  path = os.path.join(os.path.abspath(workdir), "population.json")
  if os.path.exists(path):
    with open(path) as f:
      if json.load(f) != listing:
        raise UserError(f"{workdir} holds another population (see {path}); left untouched: use "
                        f"a new --workdir, or repeat its --population and --population_vary")
  elif parallel.is_chief():
    os.makedirs(workdir, exist_ok=True)
    with open(path + ".tmp", "w") as f:
      json.dump(listing, f, indent=1)
    os.replace(path + ".tmp", path)  # other processes read it: never half-written
  return train_population(configs, workdirs, traced, dp)


def train_population(configs: list[config_lib.Config], workdirs: list[str],
                     traced: tuple[str, ...] = (),
                     dp: Optional[parallel.DataParallel] = None) -> list[TrainState]:
  """Trains each config in its workdir, all in one program; returns the final states.

  With one config this is a single run. With K, the configs differ only in seed and in the
  float fields named in `traced` (aegan_jax/population.py), and each member's workdir receives
  exactly what a single run of its config would write. Every process of a multi-process run
  calls this with the same arguments; process 0 alone writes logs, metrics and pictures.
  """
  configs = [config_lib.validate(c) for c in configs]
  for c in configs:
    check_names(c)
  config = configs[0]
  dp = dp or parallel.DataParallel.create()
  dp.check_batch_size(config.batch_size)
  chief = parallel.is_chief()
  workdirs = [os.path.abspath(w) for w in workdirs]
  for w in workdirs:
    if os.path.exists(w) and not os.path.isdir(w):
      raise UserError(f"--workdir {w} is a file; give a directory")
  with contextlib.ExitStack() as locks:  # before anything is written: one trainer per workdir
    for w in workdirs:
      locks.enter_context(lock_lib.WorkdirLock(w, enabled=chief))
    locks.enter_context(storage.quiet_background_failures())
    try:
      return _train_locked(configs, workdirs, traced, dp, chief)
    except Exception as e:  # noqa: BLE001 - a full disk is the user's to fix: one line
      full = storage.out_of_space(e)
      if full is None:
        raise
      raise storage.out_of_space_error(full, workdirs[0], _newest_checkpoint(workdirs[0])) from None


def _newest_checkpoint(workdir: str) -> Optional[int]:
  """The newest finished checkpoint on disk (orbax names them by step; one being written
  carries a suffix), read without orbax, whose threads may be the ones that failed."""
  try:
    steps = [int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.isdigit()]
  except OSError:
    return None
  return max(steps, default=None)


class _Runs:
  """The runs one program trains: a single run, or a population's members stacked on a leading
  axis (spread over the devices or not). The loop holds one state either way; this is the only
  place that knows how it is stacked, split and placed."""

  def __init__(self, members: list[_Member], dp: parallel.DataParallel):
    self.members = members
    self.strategy = members[0].strategy  # phases, step counts and networks are shared by all
    self.population = len(members) > 1
    self.spread = self.population and dp.spreads(len(members))
    self.dp = dp  # the mesh the states are placed on
    # Every member's state in one dispatch (slicing leaf by leaf, member by member, costs ~20 ms
    # a member on CPU).
    self._split = jax.jit(lambda s: [population_lib.unstack(s, i) for i in range(len(members))])

  def place(self, tree):
    return jax.device_put(tree, self.dp.batch) if self.spread else self.dp.replicate(tree)

  def join(self, states: list[TrainState]) -> TrainState:
    """The members' states as the one state the compiled step takes, placed."""
    return self.place(population_lib.stack(states) if self.population else states[0])

  def split(self, state: TrainState) -> list[TrainState]:
    return self._split(state) if self.population else [state]

  def each(self, state: TrainState, fn) -> TrainState:
    """fn(member, its state) -> its new state, for every member; re-joined."""
    return self.join([fn(m, s) for m, s in zip(self.members, self.split(state))])

  def step_of(self, state: TrainState) -> int:
    return int(state.step[0] if self.population else state.step)  # members move in lockstep

  def label(self, i: int) -> str:
    return f" member {i}" if self.population else ""


def _resume_step(ckpts: list[Checkpointer], configs: list[config_lib.Config],
                 workdirs: list[str]) -> Optional[int]:
  """The step the members resume from (None: a new run), refusing another experiment's
  workdir, or a population whose members disagree, before anything is loaded or written."""
  steps = [ck.latest_step() for ck in ckpts]
  for ck, c, latest in zip(ckpts, configs, steps):
    if latest is not None:
      ck.check_compatible(latest, c)
  if len(set(s is None for s in steps)) > 1:
    raise UserError(f"some population members have checkpoints and some do not "
                    f"({', '.join(f'{w}: {s}' for w, s in zip(workdirs, steps))}); "
                    f"left untouched: resume with the same --population, or use a new --workdir")
  return None if steps[0] is None else min(steps)


def _restore_or_init(runs: _Runs, dataset: data_lib.Dataset,
                     latest: Optional[int]) -> TrainState:
  """The members' newest checkpoints that verify (all from the oldest of those), or fresh
  states with the first phase begun; placed. Metric rows past that point are dropped."""
  members = runs.members
  if latest is None:
    states = []
    for m in members:
      m.writer.truncate_after(-1)  # rows of a run killed before its first checkpoint
      state = m.strategy.init(m.root)
      if m.strategy.phases[0].begin is not None:
        state = m.strategy.phases[0].begin(state, dataset)
      states.append(state)
    return runs.join(states)
  abstracts = [runs.dp.abstract(jax.eval_shape(m.strategy.init, m.root)) for m in members]
  restored = [m.ckpt.restore_verified(latest, a) for m, a in zip(members, abstracts)]
  latest = min(s for _, s in restored)
  if any(s != latest for _, s in restored):
    restored = [m.ckpt.restore_verified(latest, a) for m, a in zip(members, abstracts)]
  for m in members:
    m.writer.truncate_after(latest)
    m.last_good = latest
  logging.info("Resumed from %s at step %d.", ", ".join(m.ckpt.directory for m in members), latest)
  return runs.join([state for state, _ in restored])


def _write_run_files(members: list[_Member], spec) -> None:
  """config.json, flags.txt (the command that repeats the run) and spec.json in each workdir."""
  for m in members:
    os.makedirs(m.workdir, exist_ok=True)
    with open(os.path.join(m.workdir, "config.json"), "w") as f:
      f.write(config_lib.dumps(m.config))
    with open(os.path.join(m.workdir, "flags.txt"), "w") as f:
      f.write(config_lib.to_flagfile(m.config, m.workdir))
    model_lib.write_spec(m.workdir, spec)  # aegan_jax.load then needs no data


class _Schedule:
  """Which compiled function runs at each step: the phase's step, or `steps_per_call` of them
  fused in one call where a chunk fits, and which phases begin where."""

  def __init__(self, config: config_lib.Config, runs: _Runs, spec,
               traced: tuple[str, ...], intervals: list[int]):
    strategy = runs.strategy
    self._strategy = strategy
    self._per_call = config.steps_per_call
    compile_ = functools.partial(compile_phase, config, strategy, spec=spec, dp=runs.dp,
                                 population=len(runs.members), traced=traced, spread=runs.spread)
    self.fns = {p.name: compile_(p.name) for p in strategy.phases}
    self._chunked = ({p.name: compile_(p.name, steps_per_call=self._per_call)
                      for p in strategy.phases} if self._per_call > 1 else {})
    # Counts at which the host acts (logs, saves, samples, evaluates, a new epoch): a chunk of
    # steps may end on one, never pass over one.
    self._intervals = [e for e in intervals if e > 0]
    # step -> the phases (indices) that begin there; a 0-step phase (ae_pretrain's with
    # --steps=0) begins and ends at once, and its hook still builds the generator.
    self.begins: dict[int, list[int]] = {}
    for i, p in enumerate(strategy.phases[1:], start=1):
      self.begins.setdefault(strategy.phase_start(p), []).append(i)

  def at(self, step: int):
    """(the function to call at `step`, how many steps it takes)."""
    name = self._strategy.phase_at(step).name
    if self._per_call > 1 and self._chunk_fits(step):
      return self._chunked[name], self._per_call
    return self.fns[name], 1

  def _chunk_fits(self, s: int) -> bool:
    last = s + self._per_call - 1  # the last step index of the chunk
    strategy = self._strategy
    return (last < strategy.total_steps and strategy.phase_at(s) is strategy.phase_at(last)
            and all(s // e == last // e for e in self._intervals))


class _DataOrder:
  """Each member's epoch order from its own data key, all in one call, made once per epoch."""

  def __init__(self, runs: _Runs, dataset: data_lib.Dataset, per_epoch: int):
    self._runs = runs
    self._num_train = dataset.num_train
    self._per_epoch = per_epoch
    self._permute = jax.jit(jax.vmap(pipeline.epoch_permutation, in_axes=(0, None, None)),
                            static_argnums=2, out_shardings=runs.dp.replicated)
    self._keys = jnp.stack([m.key(_DATA_KEY) for m in runs.members])
    self._epoch, self._perm = -1, None

  def at(self, step: int) -> jax.Array:
    if step // self._per_epoch != self._epoch:
      self._epoch = step // self._per_epoch
      perms = self._permute(self._keys, self._epoch, self._num_train)
      self._perm = self._runs.place(perms) if self._runs.population else perms[0]
    return self._perm


class _Log:
  """The steps' metrics, fetched at each log step: checked for a non-finite value (which stops
  the run, naming the step and the last checkpoint), averaged, written and logged."""

  def __init__(self, runs: _Runs, progress: progress_lib.Progress):
    self._runs = runs
    self._progress = progress
    self._pending: list[dict] = []

  def add(self, metrics: dict) -> None:
    self._pending.append(metrics)
    if len(self._pending) > _MAX_IN_FLIGHT:
      # XLA:CPU collectives across several devices can deadlock with tens of steps queued
      # (seen with 2 forced devices); a few calls in flight still hide the dispatch.
      jax.block_until_ready(self._pending[-_MAX_IN_FLIGHT])

  def flush(self, step: int, phase: Phase) -> None:
    if not self._pending:
      return
    runs, total = self._runs, self._runs.strategy.total_steps
    # One transfer per quantity: its values of these steps joined on the device, [T] (or
    # [T, K] for a population), rather than T * K tiny fetches and Python loops over them.
    fetched = jax.device_get(jax.tree.map(lambda *xs: jnp.concatenate(xs), *self._pending))
    self._pending = []
    first = step - len(next(iter(fetched.values()))) + 1
    self._progress.update(step, phase.name)
    for i, m in enumerate(runs.members):
      mine = {k: v[:, i] if runs.population else v for k, v in fetched.items()}
      finite = {k: np.isfinite(v).reshape(len(v), -1).all(axis=1) for k, v in mine.items()}
      bad = [k for k, ok in finite.items() if not ok.all()]
      if bad:
        j = int(np.argmin(finite[bad[0]]))  # the first step with a non-finite value
        values = np.ravel(mine[bad[0]][j])
        for other in runs.members:
          other.ckpt.wait()
        where = (f"the last good checkpoint is step {m.last_good} in {m.ckpt.directory}"
                 if m.last_good is not None else "no checkpoint was saved before it")
        who = f"population member {i} ({m.workdir}): " if runs.population else ""
        raise TrainingDiverged(
            f"{who}training diverged: {bad[0]} = {float(values[~np.isfinite(values)][0])} at "
            f"step {first + j} (phase {phase.name}); stopped, and {where}; lower the learning "
            f"rates (--g_lr, --d_lr, --ae_lr) or try another --loss")
      means = {k: float(np.mean(v)) for k, v in mine.items()}
      means["steps_per_sec"] = self._progress.last_rate
      m.writer.write(step, phase.name, means)
      shown = " ".join(f"{k}={v:.4g}" for k, v in means.items() if k != "steps_per_sec")
      logging.info("step %d/%d [%s]%s %s | %s", step, total, phase.name, runs.label(i), shown,
                   self._progress.line(step, phase.name))


class _Outputs:
  """What a run leaves besides checkpoints and metrics: sample grids (scatter plots for points)
  and evaluations. Every process computes them (global computations); process 0 writes."""

  def __init__(self, runs: _Runs, dataset: data_lib.Dataset,
               evaluator: Optional[evaluation.Evaluator], chief: bool):
    self._dataset = dataset
    self._evaluator = evaluator
    self._chief = chief
    # Sampling needs no hyperparameter: the first member's networks serve all (one compilation).
    self._generate = jax.jit(runs.strategy.generate, static_argnums=2)

  def grid(self, m: _Member, mstate: TrainState, step: int) -> None:
    dataset, chief = self._dataset, self._chief
    path = os.path.join(m.workdir, "samples", f"step_{step:08d}.png")
    sample_key = m.key(_SAMPLE_KEY)  # the same z for every grid of a run
    if len(dataset.image_shape) == 1:  # points: a scatter plot over the real data
      samples = np.asarray(self._generate(mstate, sample_key, writers.SCATTER_SAMPLES))
      if chief:
        title = f"{m.config.strategy}, step {step}"
        if data_lib.protocol(m.config.dataset).kind == "mixture":  # these very points' score
          s = evaluation.mixture_modes(m.config.dataset, samples)
          title += (f": {s['modes_captured']}/{s['num_modes']} modes, "
                    f"{s['high_quality_percent']:.1f}% high quality")
        picture = writers.scatter_png(path, samples, np.asarray(dataset.test_images), title=title)
    else:
      images = np.asarray(self._generate(mstate, sample_key, m.config.grid_size ** 2))
      picture = writers.image_grid(images, rows=m.config.grid_size)
      if chief:
        weights = "EMA of G's weights" if m.config.ema_decay else "G's weights"
        writers.save_png(path, picture, caption=f"{m.config.strategy} on {m.config.dataset}, "
                         f"step {step}: {len(images)} samples ({weights}, fixed noise)")
    if chief:
      shutil.copyfile(path, os.path.join(m.workdir, "samples", "latest.png"))
      m.writer.write_image(step, "samples", picture)

  def evaluate(self, m: _Member, mstate: TrainState, step: int, final: bool, label: str) -> None:
    scalars, protocol = self._evaluator(m.strategy, mstate, seed=m.config.seed, final=final)
    if final:
      m.evaluation = {"step": step, "metrics": scalars, "protocol": protocol}
    m.writer.write(step, "eval", scalars)
    logging.info("step %d eval%s: %s", step, label,
                 " ".join(f"{k}={v:.4g}" for k, v in scalars.items()))

  def finish(self, m: _Member, mstate: TrainState, step: int, total: int,
             trained_here: bool) -> None:
    """final.png, summary.json and the TensorBoard hparams row of a member at its last step."""
    latest_png = os.path.join(m.workdir, "samples", "latest.png")
    if step == total and not os.path.exists(latest_png):
      self.grid(m, mstate, step)  # a resumed, finished run still leaves a picture
    if self._chief:
      if os.path.exists(latest_png):
        shutil.copyfile(latest_png, os.path.join(m.workdir, "samples", "final.png"))
      summary = writers.write_summary(m.workdir, step, m.evaluation)
      if trained_here:
        m.writer.write_hparams(step, m.config.to_dict(), {
            k: v for k, v in summary["final"].items() if not k.endswith("steps_per_sec")})


def _begin_phases(runs: _Runs, state: TrainState, ended: Phase, starting: list[int],
                  dataset: data_lib.Dataset, step: int, chief: bool) -> TrainState:
  """At a phase boundary: the held-out reconstruction after an autoencoder phase, then the
  next phases' begin hooks (e.g. ae_pretrain fits the code mixture and builds G)."""
  for m, mstate in zip(runs.members, runs.split(state)):
    if not ended.adversarial and m.strategy.has_autoencoder:
      mse = _heldout_reconstruction(m.strategy, mstate, dataset, m.key(_RECON_KEY), m.workdir,
                                    m.writer, step, chief)
      logging.info("Held-out reconstruction MSE after %s: %.5f", ended.name, mse)
  for i in starting:
    if runs.strategy.phases[i].begin is not None:
      state = runs.each(state, lambda m, s: m.strategy.phases[i].begin(s, dataset))
  return state


def _train_locked(configs: list[config_lib.Config], workdirs: list[str],
                  traced: tuple[str, ...], dp: parallel.DataParallel,
                  chief: bool) -> list[TrainState]:
  """train_population's body, with the configs valid and every workdir locked: set-up, the
  loop over steps with its periodic actions, the end of the run."""
  config = configs[0]
  ckpts = [Checkpointer(w, c.keep_checkpoints) for c, w in zip(configs, workdirs)]
  latest = _resume_step(ckpts, configs, workdirs)

  dataset = data_lib.load(config.dataset, config.data_dir)
  data_lib.check_batch_size(dataset, config.batch_size, config.pack)
  dataset = dataclasses.replace(dataset, train=dp.replicate(dataset.train))
  runs = _Runs([_Member(c, w, strategies.build(c, dataset.spec, checked=True), ck,
                        writers.MetricWriter(w, enabled=chief))
                for c, w, ck in zip(configs, workdirs, ckpts)], dp)
  strategy, total = runs.strategy, runs.strategy.total_steps
  evaluator = _make_evaluator(config, dataset)
  state = _restore_or_init(runs, dataset, latest)
  if chief:
    _write_run_files(runs.members, dataset.spec)

  per_epoch = pipeline.steps_per_epoch(dataset.num_train, config.samples_per_step)
  order = _DataOrder(runs, dataset, per_epoch)
  schedule = _Schedule(config, runs, dataset.spec, traced, [
      config.log_every, config.checkpoint_every, config.sample_every, per_epoch,
      config.eval_every if evaluator else 0])
  hparams = runs.place(population_lib.hparams(configs, traced)) if runs.population else {}
  if traced:
    _check_traceable(schedule.fns, state, dataset, hparams, traced)
  outputs = _Outputs(runs, dataset, evaluator, chief)

  step = first_step = runs.step_of(state)
  if step > total:
    raise UserError(f"{workdirs[0]} is at step {step}, past the {total} steps this configuration "
                    f"asks for; raise --steps to train on, or use a new --workdir")
  if step < total and chief:
    for m in runs.members:  # a finished run trained on is no longer finished
      if os.path.exists(os.path.join(m.workdir, "summary.json")):
        os.remove(os.path.join(m.workdir, "summary.json"))
      m.writer.write_config(step, m.config.to_dict())
  log = _Log(runs, progress_lib.Progress(
      [(p.name, strategy.phase_start(p), strategy.phase_start(p) + p.num_steps)
       for p in strategy.phases], step))
  logging.info("Training %s/%s on %s (%s) for %d steps from step %d in %s%s, on %d device(s) "
               "in %d process(es).", config.strategy, config.arch, config.dataset,
               "x".join(map(str, dataset.image_shape)), total, step, workdirs[0],
               f" and {len(runs.members) - 1} more population members"
               + (" (spread over the devices)" if runs.spread else "") if runs.population else "",
               dp.num_devices, jax.process_count())

  with _StopFlag() as stop:
    while step < total:
      phase = strategy.phase_at(step)
      fn, n = schedule.at(step)
      state, metrics = fn(state, dataset.train, order.at(step), hparams)
      log.add(metrics)
      step += n

      starting = schedule.begins.get(step, [])  # this phase ended; these begin
      # Read once (the signal may land anywhere in this iteration); with several processes they
      # must agree on the step they stop at, so they compare flags at every log step.
      stopping = (parallel.any_process(stop.requested)
                  if jax.process_count() == 1 or step % config.log_every == 0 else False)
      save_now = (step % config.checkpoint_every == 0 or step == total or stopping
                  or bool(starting))
      if step % config.log_every == 0 or save_now:
        log.flush(step, phase)
      if starting:
        state = _begin_phases(runs, state, phase, starting, dataset, step, chief)
      # The run ends with the last phase's outputs even when that phase had no step.
      adversarial = (strategy.phases[-1] if step == total else phase).adversarial
      sampling = adversarial and (step % config.sample_every == 0 or step == total)
      evaluating = evaluator and adversarial and (step % config.eval_every == 0
                                                  or step == total)
      if sampling or evaluating or save_now:
        for i, (m, mstate) in enumerate(zip(runs.members, runs.split(state))):
          if sampling:
            outputs.grid(m, mstate, step)
          if evaluating:
            outputs.evaluate(m, mstate, step, final=step == total, label=runs.label(i))
          if save_now:
            m.ckpt.save(step, mstate, m.config, force=True)
            m.last_good = step
      if stopping:
        for m in runs.members:
          m.ckpt.wait()
          m.writer.close()
        logging.info("SIGTERM: saved checkpoint at step %d; exiting.", step)
        raise SystemExit(143)

  finals = runs.split(state)
  for m, mstate in zip(runs.members, finals):
    outputs.finish(m, mstate, step, total, trained_here=first_step < step == total)
    m.ckpt.close()
    m.writer.close()
  logging.info("Done: %d steps; outputs in %s%s", total, workdirs[0],
               f" and {len(runs.members) - 1} more" if runs.population else "")
  return finals


def _check_traceable(fns, state, dataset, hparams, traced) -> None:
  """Traces every phase once before training, so a varied field the program branches on is
  refused at once (a traced value has no truth value) rather than at its phase."""
  perm = jax.ShapeDtypeStruct((len(jax.tree.leaves(hparams)[0]), dataset.num_train), jnp.int32)
  for name, fn in fns.items():
    try:
      jax.eval_shape(fn, state, dataset.train, perm, hparams)
    except jax.errors.ConcretizationTypeError:
      raise UserError(
          f"--population_vary cannot vary {', '.join(traced)} here: the {name} step decides "
          f"something by its value (e.g. whether a term is on), which one compiled program "
          f"cannot do per member; vary it with scripts.sweep instead") from None


def load_for_sampling(workdir: str, step: Optional[int] = None):
  """(config, strategy, state, image_shape) of a workdir's checkpoint, for export and eval."""
  workdir = os.path.abspath(workdir)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise UserError(f"{workdir} holds no checkpoints; train first with: "
                    f"python -m experiments.train --workdir={workdir}")
  ckpt = Checkpointer(workdir, keep=10**6)
  step = ckpt.latest_step() if step is None else step
  if step is None:
    raise UserError(f"{workdir} holds no checkpoints; train first with: "
                    f"python -m experiments.train --workdir={workdir}")
  config = config_lib.Config.from_dict(ckpt.saved_config(step))
  dataset = data_lib.load(config.dataset, config.data_dir)
  strategy = strategies.build(config, dataset.spec)
  state = ckpt.restore(step, jax.eval_shape(strategy.init, jax.random.key(config.seed)))
  return config, strategy, state, dataset
