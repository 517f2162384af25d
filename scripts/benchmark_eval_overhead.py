"""How much in-training evaluation slows training at the default interval (JSON).

  python -m scripts.benchmark_eval_overhead [--steps=10000] [train flags...]

Trains the same configuration in fresh temporary workdirs, with --eval_every at its default
and with 0, alternating --repeats times, and prints one JSON line with the median wall times
and the overhead. Startup
(imports, data) is excluded: the clock runs inside train_and_evaluate.
"""

import json
import statistics
import tempfile
import time

from absl import flags

from aegan_jax import cli
from aegan_jax import config as config_lib

config_lib.define_flags()
flags.DEFINE_integer("repeats", 2, "Runs of each setting, alternated; medians are reported.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from aegan_jax import train
  base = config_lib.from_flags()
  if base.eval_every == 0:
    raise cli.UserError("--eval_every=0 leaves nothing to measure; keep the default or set one")
  if FLAGS.repeats <= 0:
    raise cli.UserError(f"--repeats must be positive, got {FLAGS.repeats}")
  # Alternate the two settings, so a disturbance of the machine (another job, clock changes)
  # falls on both, and report medians.
  runs = {"with_eval": [], "without_eval": []}
  for _ in range(FLAGS.repeats):
    for label, config in (("with_eval", base), ("without_eval", base.replace(eval_every=0))):
      with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        train.train_and_evaluate(config, workdir)
        runs[label].append(time.perf_counter() - start)
  times = {k: statistics.median(v) for k, v in runs.items()}
  print(json.dumps({
      "benchmark": "eval_overhead", "dataset": base.dataset, "strategy": base.strategy,
      "arch": base.arch, "steps": base.steps, "pretrain_steps": base.pretrain_steps,
      "eval_every": base.eval_every, "eval_metrics": base.eval_metrics,
      "eval_samples": base.eval_samples, "with_eval_s": round(times["with_eval"], 2),
      "without_eval_s": round(times["without_eval"], 2), "repeats": FLAGS.repeats,
      "with_eval_runs_s": [round(t, 2) for t in runs["with_eval"]],
      "without_eval_runs_s": [round(t, 2) for t in runs["without_eval"]],
      "overhead_percent": round(100 * (times["with_eval"] / times["without_eval"] - 1), 2)}))


if __name__ == "__main__":
  cli.run(main)
