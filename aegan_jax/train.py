"""train_and_evaluate(config, workdir): data in, phases of jit-compiled steps, outputs out.

The loop is generic: the strategy says which pure step runs at each step index, and this
module owns everything around it: the device-resident batches, checkpoints and resume,
metrics/TensorBoard/PNG outputs, progress with ETA, SIGTERM, and stopping on a non-finite loss.
"""

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
from aegan_jax import data as data_lib
from aegan_jax import adversarial, evaluation, strategies, writers
from aegan_jax.checkpoint import Checkpointer
from aegan_jax.data import pipeline
from aegan_jax.errors import UserError
from aegan_jax.losses import ADVERSARIAL
from aegan_jax.models import ARCHS
from aegan_jax.state import TrainState
from aegan_jax.strategies.base import Phase, Strategy

# Sub-keys of the run's root key, one per purpose (fold_in constants, never reused).
_DATA_KEY, _SAMPLE_KEY, _RECON_KEY = 1001, 1002, 1003


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


def _phase_fn(phase: Phase, batch_size: int, ema_decay: float):
  """phase.step fused with the batch gather (and the generator's EMA), jitted once, the state
  donated."""
  def run(state: TrainState, data, perm):
    state, metrics = phase.step(
        state, pipeline.batch_from_permutation(data, perm, state.step, batch_size))
    if ema_decay and phase.adversarial:
      state = state.replace(extras={**state.extras, "ema_generator": adversarial.ema_update(
          state.extras["ema_generator"], state.params["generator"], ema_decay)})
    return state, metrics
  return jax.jit(run, donate_argnums=(0,))


def _format_eta(seconds: float) -> str:
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _heldout_reconstruction(strategy: Strategy, state: TrainState, dataset: data_lib.Dataset,
                            key: jax.Array, workdir: str, writer: writers.MetricWriter,
                            step: int) -> float:
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
  writers.save_png(os.path.join(workdir, "samples", "reconstruction.png"), picture)
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
  logging.info("Evaluating %s every %d steps.", ",".join(metrics), config.eval_every)
  return evaluation.Evaluator(dataset, metrics, data_dir, config.eval_samples,
                              config.inception_weights)


def train_and_evaluate(config: config_lib.Config, workdir: str) -> TrainState:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final state."""
  config = config_lib.validate(config)
  check_names(config)
  workdir = os.path.abspath(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"--workdir {workdir} is a file; give a directory")

  # Refuse another experiment's workdir before loading data or writing anything.
  ckpt = Checkpointer(workdir, config.keep_checkpoints)
  latest = ckpt.latest_step()
  if latest is not None:
    ckpt.check_compatible(latest, config)

  dataset = data_lib.load(config.dataset, config.data_dir)
  data_lib.check_batch_size(dataset, config.batch_size)
  strategy = strategies.build(config, dataset.spec)
  evaluator = _make_evaluator(config, dataset)
  root = jax.random.key(config.seed)
  writer = writers.MetricWriter(workdir)

  if latest is not None:
    state = ckpt.restore(latest, jax.eval_shape(strategy.init, root))
    writer.truncate_after(latest)
    logging.info("Resumed from %s at step %d.", ckpt.directory, latest)
  else:
    state = strategy.init(root)
    if strategy.phases[0].begin is not None:
      state = strategy.phases[0].begin(state, dataset)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config_lib.dumps(config))
  with open(os.path.join(workdir, "flags.txt"), "w") as f:
    f.write(config_lib.to_flagfile(config, workdir))

  total = strategy.total_steps
  data_key = jax.random.fold_in(root, _DATA_KEY)
  sample_key = jax.random.fold_in(root, _SAMPLE_KEY)  # the same z for every grid of a run
  recon_key = jax.random.fold_in(root, _RECON_KEY)
  fns = {p.name: _phase_fn(p, config.batch_size, strategy.ema_decay) for p in strategy.phases}
  per_epoch = pipeline.steps_per_epoch(dataset.num_train, config.batch_size)
  permute = jax.jit(pipeline.epoch_permutation, static_argnums=2)
  epoch, perm = -1, None
  generate = jax.jit(strategy.generate, static_argnums=2)
  ends = {strategy.phase_start(p) + p.num_steps: p for p in strategy.phases}

  step = int(state.step)
  if step > total:
    raise UserError(f"{workdir} is at step {step}, past the {total} steps this configuration "
                    f"asks for; raise --steps to train on, or use a new --workdir")
  pending: list[dict] = []
  last_time, last_step = time.perf_counter(), step
  last_good = latest

  def flush(phase: Phase) -> None:
    """Fetches the metrics of the steps since the last flush, checks them, logs their mean."""
    nonlocal pending, last_time, last_step
    if not pending:
      return
    fetched = jax.device_get(pending)
    first = step - len(fetched) + 1
    for i, m in enumerate(fetched):
      bad = [k for k, v in m.items() if not np.all(np.isfinite(v))]
      if bad:
        ckpt.wait()
        where = (f"the last good checkpoint is step {last_good} in {ckpt.directory}"
                 if last_good is not None else "no checkpoint was saved before it")
        raise TrainingDiverged(
            f"training diverged: {bad[0]} = {float(m[bad[0]])} at step {first + i} "
            f"(phase {phase.name}); stopped, and {where}; lower the learning rates "
            f"(--g_lr, --d_lr, --ae_lr) or try another --loss")
    means = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
    now = time.perf_counter()
    rate = (step - last_step) / max(now - last_time, 1e-9)
    last_time, last_step = now, step
    means["steps_per_sec"] = rate
    writer.write(step, phase.name, means)
    shown = " ".join(f"{k}={v:.4g}" for k, v in means.items() if k != "steps_per_sec")
    logging.info("step %d/%d [%s] %s | %.1f steps/s, ETA %s", step, total, phase.name, shown,
                 rate, _format_eta((total - step) / max(rate, 1e-9)))
    pending = []

  def save_grid(phase_step: int) -> None:
    path = os.path.join(workdir, "samples", f"step_{phase_step:08d}.png")
    if len(dataset.image_shape) == 1:  # points: a scatter plot over the real data
      samples = np.asarray(generate(state, sample_key, writers.SCATTER_SAMPLES))
      picture = writers.scatter_png(path, samples, np.asarray(dataset.test_images),
                                    title=f"step {phase_step}")
    else:
      images = np.asarray(generate(state, sample_key, config.grid_size ** 2))
      picture = writers.image_grid(images, rows=config.grid_size)
      writers.save_png(path, picture)
    shutil.copyfile(path, os.path.join(workdir, "samples", "latest.png"))
    writer.write_image(phase_step, "samples", picture)

  logging.info("Training %s/%s on %s (%s) for %d steps from step %d in %s.", config.strategy,
               config.arch, config.dataset, "x".join(map(str, dataset.image_shape)), total,
               step, workdir)
  with _StopFlag() as stop:
    while step < total:
      phase = strategy.phase_at(step)
      if step // per_epoch != epoch:
        epoch = step // per_epoch
        perm = permute(data_key, epoch, dataset.num_train)
      state, metrics = fns[phase.name](state, dataset.train, perm)
      pending.append(metrics)
      step += 1
      at_end = step in ends and step < total
      stopping = stop.requested  # read once: the signal may land anywhere in this iteration
      save_now = step % config.checkpoint_every == 0 or step == total or stopping or at_end
      if step % config.log_every == 0 or save_now:
        flush(phase)
      if at_end:
        if not phase.adversarial and strategy.has_autoencoder:
          mse = _heldout_reconstruction(strategy, state, dataset, recon_key, workdir, writer, step)
          logging.info("Held-out reconstruction MSE after %s: %.5f", phase.name, mse)
        nxt = strategy.phase_at(step)
        if nxt.begin is not None:
          state = nxt.begin(state, dataset)
      if phase.adversarial and (step % config.sample_every == 0 or step == total):
        save_grid(step)
      if evaluator and phase.adversarial and (step % config.eval_every == 0 or step == total):
        scalars, _ = evaluator(strategy, state, seed=config.seed)
        writer.write(step, "eval", scalars)
        logging.info("step %d eval: %s", step, " ".join(f"{k}={v:.4g}" for k, v in scalars.items()))
      if save_now:
        ckpt.save(step, state, config, force=True)
        last_good = step
      if stopping:
        ckpt.wait()
        writer.close()
        logging.info("SIGTERM: saved checkpoint at step %d; exiting.", step)
        raise SystemExit(143)

  if step == total and not os.path.exists(os.path.join(workdir, "samples", "latest.png")):
    save_grid(step)  # a resumed, already finished run still leaves its picture
  if os.path.exists(os.path.join(workdir, "samples", "latest.png")):
    shutil.copyfile(os.path.join(workdir, "samples", "latest.png"),
                    os.path.join(workdir, "samples", "final.png"))
  ckpt.close()
  writer.close()
  logging.info("Done: %d steps; outputs in %s", total, workdir)
  return state


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
