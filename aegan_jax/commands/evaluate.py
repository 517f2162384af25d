"""Evaluate a trained run: `aegan-evaluate --workdir=W [--num_samples=N]` (or `python -m
scripts.evaluate ...` from the repository root).

Prints and writes W/eval.json: every metric that fits the dataset (or --metrics), each with its
protocol (feature network and its accuracy, real and generated sample counts, split, seed). On
an image dataset with no domain classifier cached yet, one is trained first (once, with
progress lines; cached beside the data, see aegan_jax/features/classifier.py).
Also writes W/curves.png (losses and metrics against step) and, for 2-D data,
W/samples_scatter.png (2,500 samples over the mode means).
"""

import json
import os

from absl import flags

from aegan_jax import cli

flags.DEFINE_string("workdir", None, "Workdir of a training run.")
flags.DEFINE_integer("num_samples", None, "Generated samples for image metrics "
                     "(default: the run's --eval_samples, 10,000).")
flags.DEFINE_string("metrics", "auto", "Comma-separated fid,kid,is,pr,dc,modes, or auto.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_string("inception_weights", "", "InceptionV3 weights (.npz) for image metrics.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.DEFINE_integer("classifier_steps", None, "Training steps of the domain classifier if "
                     "none is cached yet (default: the run's --classifier_steps, 0 = 30 epochs "
                     "within 500-2000 steps).")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from aegan_jax import data, evaluation, train, writers
  from aegan_jax.data import tfds_source

  if FLAGS.num_samples is not None and FLAGS.num_samples <= 0:
    raise cli.UserError(f"--num_samples must be a positive integer, got {FLAGS.num_samples}")
  if FLAGS.classifier_steps is not None and FLAGS.classifier_steps < 0:
    raise cli.UserError(f"--classifier_steps must be >= 0 (0 = the default), got "
                        f"{FLAGS.classifier_steps}")
  config, strategy, state, dataset = train.load_for_sampling(FLAGS.workdir, FLAGS.step)
  data_dir = tfds_source.resolve_data_dir(config.data_dir)
  weights = FLAGS.inception_weights or config.inception_weights
  metrics, note = evaluation.resolve_metrics(FLAGS.metrics, config.dataset, data_dir, weights)
  if not metrics:
    raise cli.UserError(f"no metric fits this run: {note}")
  num = FLAGS.num_samples or config.eval_samples
  classifier_steps = (config.classifier_steps if FLAGS.classifier_steps is None
                      else FLAGS.classifier_steps)
  evaluator = evaluation.Evaluator(dataset, metrics, data_dir, num, weights,
                                   classifier_steps or None)
  scalars, protocol = evaluator(strategy, state, seed=FLAGS.seed)
  record = {"workdir": os.path.abspath(FLAGS.workdir), "step": int(state.step),
            "dataset": config.dataset, "strategy": config.strategy, "arch": config.arch,
            "metrics": scalars, "protocol": protocol}
  with open(os.path.join(FLAGS.workdir, "eval.json"), "w") as f:
    json.dump(record, f, indent=1)
  metrics_path = os.path.join(FLAGS.workdir, "metrics.jsonl")
  if os.path.exists(metrics_path):
    writers.plot_curves(metrics_path, os.path.join(FLAGS.workdir, "curves.png"))
  protocol = data.protocol(config.dataset)
  if protocol.kind == "mixture":
    samples = evaluation.sample(strategy, state, evaluation.VEEGAN_SAMPLES, FLAGS.seed)
    writers.scatter_png(os.path.join(FLAGS.workdir, "samples_scatter.png"), samples,
                        dataset.test_images, title=f"{config.strategy}, step {int(state.step)}",
                        means=protocol.mode_means())
  print(json.dumps(record, indent=1))


def entry() -> None:
  """The console script `aegan-evaluate`; also `python -m scripts.evaluate` (repository root) and
  `python -m aegan_jax.commands.evaluate`."""
  cli.run(main, __name__)


if __name__ == "__main__":
  entry()
