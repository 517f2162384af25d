"""Mode-collapse tables: strategies x seeds, beside published rows.

  python -m scripts.benchmark_modes --flagfile=experiments/presets/mixture2d.flags \
      --datasets=ring,grid --strategies=gan,ae_pretrain,'ae_pretrain[code_components=32]' --seeds=5
  python -m scripts.benchmark_modes --flagfile=experiments/presets/stacked_mnist.flags \
      --datasets=stacked_mnist --seeds=1 --out=docs/results/stacked_mnist.md

Every train flag is accepted (after the preset, it overrides it); a strategy entry may carry
its own overrides, `name[flag=value;flag=value]`. Each run trains in its own workdir under
--root (a finished run is not trained again) and is scored with the protocol of its data:
2-D ring/grid, 2,500 samples, VEEGAN's modes / % high quality / reverse KL
(aegan_jax.evaluation.mixture_modes); Stacked MNIST, 26,000 samples labelled channel by channel
by the digit classifier, modes of 1000 and reverse KL. The table (mean and standard error over
seeds) goes to --out with the exact command that produced it.
"""

import dataclasses
import json
import os
import shlex
import sys

from absl import flags
from absl import logging
import numpy as np

from aegan_jax import cli
from aegan_jax import config as config_lib
from scripts.mode_tables import (AT_CHANCE, CHANCE_DRAWS, PUBLISHED, PUBLISHED_STACKED,
                                 chance_rows, display_name, is_at_chance)

config_lib.define_flags()
flags.DEFINE_list("datasets", ["ring", "grid"], "ring and grid (2-D), or stacked_mnist.")
flags.DEFINE_list("strategies", ["gan", "ae_pretrain"], "Strategies to compare.")
flags.DEFINE_integer("seeds", 5, "Seeds per (dataset, strategy): 0 .. seeds-1.")
flags.DEFINE_string("root", "runs/benchmark_modes", "Parent of the runs' workdirs.")
flags.DEFINE_string("out", "docs/results/modes_5000_steps.md", "Markdown table to write.")
FLAGS = flags.FLAGS


def parse_entry(entry: str) -> tuple[str, dict]:
  """'ae_pretrain[code_components=32;code_mapping=gaussian]' -> (name, {field: value})."""
  name, _, rest = entry.partition("[")
  overrides = {}
  if rest:
    if not rest.endswith("]"):
      raise cli.UserError(f"--strategies entry {entry!r}: write name[flag=value;flag=value]")
    fields = {f.name: f for f in dataclasses.fields(config_lib.Config)}
    for item in filter(None, rest[:-1].split(";")):
      key, eq, value = item.partition("=")
      if not eq or key not in fields:
        raise cli.UserError(f"--strategies entry {entry!r}: {item!r} is not flag=value with a "
                            f"train flag")
      kind = type(getattr(config_lib.Config(), key))
      overrides[key] = (value.lower() in ("1", "true") if kind is bool else kind(value))
  return name, overrides


def run_one(base: config_lib.Config, dataset: str, entry: str, seed: int) -> dict:
  from aegan_jax import data, evaluation, train
  name, overrides = parse_entry(entry)
  config = config_lib.validate(base.replace(dataset=dataset, strategy=name, seed=seed,
                                            **overrides))
  tag = entry.replace("[", "_").replace("]", "").replace(";", "_").replace("=", "")
  workdir = os.path.join(FLAGS.root, f"{dataset}_{tag}_seed{seed}")
  result_path = os.path.join(workdir, "eval_modes.json")
  if os.path.exists(result_path):
    with open(result_path) as f:
      saved = json.load(f)
    # Fields added to Config since the run count at their defaults.
    if config_lib.Config.from_dict(saved.get("config", {})) == config:
      return saved
  train.train_and_evaluate(config, workdir)
  _, strategy_obj, state, dataset_obj = train.load_for_sampling(workdir)
  if dataset == "stacked_mnist":
    data_dir = data.tfds_source.resolve_data_dir(config.data_dir)
    scalars, protocol = evaluation.Evaluator(dataset_obj, ["modes"], data_dir, 1)(
        strategy_obj, state, seed=10_000 + seed)
    result = {**scalars, "num_modes": 1000, "protocol": protocol["modes"]}
  else:
    samples = evaluation.sample(strategy_obj, state, evaluation.VEEGAN_SAMPLES,
                                seed=10_000 + seed)
    result = evaluation.mixture_modes(dataset, samples)
  result["config"] = config.to_dict()
  with open(result_path, "w") as f:
    json.dump(result, f, indent=1)
  return result


def mean_se(values) -> tuple[float, float]:
  v = np.asarray(values, np.float64)
  return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def cell(values, digits: int) -> str:
  """'mean ± se' over the seeds; a reverse KL is undefined for a seed without one HQ
  sample: those seeds are left out and counted."""
  finite = [v for v in values if v is not None and np.isfinite(v)]
  if not finite:
    return "undefined (no HQ sample)"
  m, se = mean_se(finite)
  out = f"{m:.{digits}f} ± {se:.{digits}f}" if len(finite) > 1 else f"{m:.{digits}f}"
  return out if len(finite) == len(values) else f"{out} ({len(values) - len(finite)} of " \
      f"{len(values)} seeds: no HQ sample)"


def stacked_table(results: dict, base: config_lib.Config, command: str) -> str:
  runs = [r for rs in results.values() for r in rs]
  accuracy = runs[0]["protocol"].get("classifier_test_accuracy") if runs else None
  lines = [
      "# Stacked MNIST (1000 modes)", "",
      "Produced by:", "", "```", command, "```", "",
      f"Protocol (docs/protocols.md section 2): {FLAGS.seeds} seed{'s' if FLAGS.seeds > 1 else ''} "
      f"per row; 26,000 generator "
      f"samples; each channel labelled by our digit classifier (held-out accuracy "
      f"{accuracy if accuracy is None else f'{100 * accuracy:.1f}%'}); the digit triple is the "
      f"mode; reverse KL = KL(p_gen || uniform over 1000) in nats. Ours: mean ± standard error "
      f"over seeds. Networks: {base.arch} "
      + (f"{','.join(map(str, base.mlp_hidden))}" if base.arch == "mlp"
         else f"channels {base.dcgan_channels}")
      + f", latent {base.latent_dim}, code {base.code_dim}, batch {base.batch_size}, "
      f"{base.steps} adversarial steps (+{base.pretrain_steps} autoencoder steps for "
      f"ae_pretrain), Adam lr g {base.g_lr} / d {base.d_lr}, beta1 {base.adam_b1}, loss "
      f"{base.loss}; a row's [flag=value] overrides these. The published rows use DCGAN-family "
      f"networks trained far longer; compare strategies within our rows first.", "",
      "| method | source | modes /1000 | reverse KL |", "|---|---|---|---|"]
  for entry in FLAGS.strategies:
    rs = results.get(("stacked_mnist", entry))
    if not rs:
      continue
    lines.append(f"| **{entry}** (ours) | this repo | "
                 f"{cell([r['modes_captured'] for r in rs], 1)} | "
                 f"{cell([r['reverse_kl'] for r in rs], 3)} |")
  for method, modes, kl, source in PUBLISHED_STACKED:
    lines.append(f"| {method} | {source} | {modes} | {kl} |")
  lines += ["", f"Per-seed results: `eval_modes.json` in each run's workdir under `{FLAGS.root}`.",
            ""]
  return "\n".join(lines)


def table(results: dict, base: config_lib.Config, command: str) -> str:
  cols = ["modes", "high_quality_percent", "reverse_kl"]
  lines = [
      "# Mode collapse on the 2-D ring and grid", "",
      "Produced by:", "", "```", command, "```", "",
      f"Protocol (docs/protocols.md section 1, VEEGAN): {FLAGS.seeds} seeds per row; per seed "
      f"2,500 generator samples; a sample is high quality (HQ) within 3 std of its nearest mode "
      f"mean (ring std 0.01, grid std 0.05); a mode is captured if it is the nearest mean of at "
      f"least one HQ sample; reverse KL = KL(p_HQ || uniform) in nats. Ours: mean ± standard "
      f"error over seeds. Networks: mlp {','.join(map(str, base.mlp_hidden))} (relu), "
      f"latent {base.latent_dim}, code {base.code_dim}, batch {base.batch_size}, "
      f"{base.steps} adversarial steps (+{base.pretrain_steps} autoencoder steps for "
      f"ae_pretrain), Adam lr g {base.g_lr} / d {base.d_lr}, beta1 {base.adam_b1}, "
      f"loss {base.loss}; a row's [flag=value] overrides these. Published rows use other "
      f"architectures and budgets (VEEGAN's and "
      f"PacGAN's own), so compare strategies within our rows first.", "",
      "| method | source | ring modes /8 | ring % HQ | ring rev-KL | grid modes /25 | grid % HQ "
      "| grid rev-KL |",
      "|---|---|---|---|---|---|---|---|"]
  chance = {d: chance_rows(d) for d in ("ring", "grid")}

  def row(name: str, source: str, runs_of) -> str:
    cells, at_chance = [], []
    for dataset in ("ring", "grid"):
      runs = runs_of(dataset)
      if not runs:
        cells += ["—"] * 3
        continue
      for col in cols:
        key = "modes_captured" if col == "modes" else col
        cells.append(cell([r[key] for r in runs], 3 if col == "reverse_kl" else 1))
      if runs is not chance[dataset] and is_at_chance(runs, chance[dataset]):
        at_chance.append(dataset)
    mark = f" — *at chance on {' and '.join(at_chance)}*" if at_chance else ""
    return f"| {name}{mark} | {source} | " + " | ".join(cells) + " |"

  for strategy in FLAGS.strategies:
    lines.append(row(f"**{display_name(strategy)}** (ours)", "this repo",
                     lambda d, s=strategy: results.get((d, s))))
  lines.append(row("uniform cloud over the data's bounding box (chance)",
                   f"this repo, {CHANCE_DRAWS} draws", lambda d: chance[d]))
  for row in PUBLISHED:  # as published, digits included
    lines.append(f"| {row[0]} | {row[1]} | " + " | ".join(
        "—" if v is None else str(v) for v in row[2:]) + " |")
  lines += ["", f"*At chance*: the row's mean % HQ is below {AT_CHANCE} times the chance row's "
            "(a uniform cloud of the same 2,500 samples over the training set's bounding box, "
            "scored by the same counter): such a row measures a generator that learned little "
            "beyond the data's extent, not the method.", "",
            "Per-seed results: `eval_modes.json` in each run's workdir under "
            f"`{FLAGS.root}`.", ""]
  return "\n".join(lines)


def main(argv):
  del argv
  base = config_lib.validate(config_lib.from_flags())
  stacked = FLAGS.datasets == ["stacked_mnist"]
  for d in FLAGS.datasets:
    if d not in ("ring", "grid") and not stacked:
      raise cli.UserError(f"--datasets takes ring and grid (2-D), or stacked_mnist alone; "
                          f"got {','.join(FLAGS.datasets)}")
  for entry in FLAGS.strategies:
    parse_entry(entry)
  if FLAGS.seeds <= 0:
    raise cli.UserError(f"--seeds must be positive, got {FLAGS.seeds}")
  results = {}
  for dataset in FLAGS.datasets:
    for strategy in FLAGS.strategies:
      for seed in range(FLAGS.seeds):
        r = run_one(base, dataset, strategy, seed)
        results.setdefault((dataset, strategy), []).append(r)
        logging.warning("%s %s seed %d: %d/%d modes, %.1f%% HQ, reverse KL %.3f", dataset,
                        strategy, seed, r["modes_captured"], r["num_modes"],
                        r.get("high_quality_percent", float("nan")), r["reverse_kl"])
  command = "python -m scripts.benchmark_modes " + " ".join(shlex.quote(a) for a in sys.argv[1:])
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(FLAGS.out, "w") as f:
    f.write((stacked_table if stacked else table)(results, base, command))
  print(open(FLAGS.out).read())


if __name__ == "__main__":
  cli.run(main)
