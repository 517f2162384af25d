"""Cost of the published protocols on this machine: ms per step of each protocol preset, for
one run and for 5 seeds as one population program, and the projected wall time of the full
protocol. Prints JSON (one object, presets by name).

  python -m scripts.benchmark_presets                       # every preset
  python -m scripts.benchmark_presets --presets=unrolled_grid,pacgan_grid --steps=3000

Each preset is trained for --steps steps (or its own --steps if fewer), in a temporary
workdir; the rate is the median of the logged steps/s over the log intervals after the
first (which holds the compilation). Projections: the preset's --steps at that rate (one
seed), and 5 seeds as one population program (or 5 runs where the strategy cannot vary as a
population); sampling, checkpoints and evaluation are left out.
"""

import glob
import json
import os
import tempfile

from absl import flags
from absl import logging
import numpy as np

from aegan_jax import cli
from aegan_jax import config as config_lib

PRESET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "experiments", "presets", "protocols")
flags.DEFINE_list("presets", [], "Preset names under experiments/presets/protocols/ (empty: all).")
flags.DEFINE_integer("steps", 2000, "Steps timed per preset (fewer if the preset has fewer).")
flags.DEFINE_integer("population", 5, "Members of the population measurement (0: skip).")
flags.DEFINE_list("overrides", [], "flag=value applied to every preset, e.g. strategy=bigan.")
FLAGS = flags.FLAGS


def preset_paths() -> dict[str, str]:
  return {os.path.basename(p)[:-len(".flags")]: p
          for p in sorted(glob.glob(os.path.join(PRESET_DIR, "*.flags")))}


def measured_rate(workdir: str) -> float:
  """Median steps/s over the log intervals after the first (compilation)."""
  paths = [os.path.join(workdir, "metrics.jsonl")] + sorted(
      glob.glob(os.path.join(workdir, "member_*", "metrics.jsonl")))[:1]
  path = next(p for p in paths if os.path.exists(p))
  rates = [r["steps_per_sec"] for r in map(json.loads, open(path)) if "steps_per_sec" in r]
  if len(rates) < 2:
    raise cli.UserError(f"--steps={FLAGS.steps} gives fewer than 2 log intervals; raise it")
  return float(np.median(rates[1:]))


def time_preset(path: str, overrides: dict) -> dict:
  from aegan_jax import train
  full = config_lib.from_flagfile(path, **overrides)
  steps = min(FLAGS.steps, full.steps)
  timed = full.replace(steps=steps, log_every=max(steps // 8, 1), sample_every=10 * steps,
                       checkpoint_every=10 * steps, eval_every=0)
  out = {"strategy": full.strategy, "full_steps": full.steps, "timed_steps": steps}
  with tempfile.TemporaryDirectory() as tmp:
    train.train_and_evaluate(timed, os.path.join(tmp, "one"))
    rate = measured_rate(os.path.join(tmp, "one"))
    out.update(ms_per_step=round(1000 / rate, 3),
               full_protocol_minutes_one_seed=round(full.steps / rate / 60, 1))
    if FLAGS.population > 1:
      try:
        train.train_members(timed, os.path.join(tmp, "pop"), FLAGS.population, "")
        rate_pop = measured_rate(os.path.join(tmp, "pop"))
        out.update(population=FLAGS.population,
                   ms_per_step_population=round(1000 / rate_pop, 3),
                   full_protocol_minutes_population=round(full.steps / rate_pop / 60, 1))
      except cli.UserError as e:  # a strategy that cannot vary as a population: 5 runs
        out.update(population_refused=str(e),
                   full_protocol_minutes_population=round(
                       FLAGS.population * full.steps / rate / 60, 1))
  return out


def main(argv):
  del argv
  paths = preset_paths()
  names = FLAGS.presets or list(paths)
  unknown = [n for n in names if n not in paths]
  if unknown:
    raise cli.UserError(f"unknown --presets {','.join(unknown)}; choose from {','.join(paths)}")
  overrides = {}
  for item in FLAGS.overrides:
    key, _, value = item.partition("=")
    kind = type(getattr(config_lib.Config(), key, None))
    if key not in config_lib.Config.__dataclass_fields__:
      raise cli.UserError(f"--overrides {item!r}: {key} is not a train flag")
    overrides[key] = value.lower() in ("1", "true") if kind is bool else kind(value)
  results = {}
  for name in names:
    results[name] = time_preset(paths[name], overrides)
    logging.warning("%s: %s", name, results[name])
  print(json.dumps({"overrides": overrides, "presets": results}, indent=1))


if __name__ == "__main__":
  cli.run(main)
