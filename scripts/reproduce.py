"""Runs the published 2-D protocols as resumable cells, within a wall-clock budget.

  nohup python -m scripts.reproduce --budget_minutes=30 > reproduce.log 2>&1 &
  python -m scripts.reproduce --list          # the cells, in order, and which are finished

A cell is (protocol preset, dataset, strategy entry): 5 seeds trained as one population
program (`experiments.train --population=5`) in runs/cells/<cell>, evaluated every
--eval_every steps with the VEEGAN mode protocol (2,500 samples; modes, % HQ, reverse KL),
so each cell carries its learning curve. A finished cell writes docs/results/cells/<cell>.json
(per-seed final scores, the curve, wall time, the exact command) and is never run again. The
budget stops training; the next invocation resumes the cell in progress from its last
checkpoint. A stopped cell writes its curve so far to docs/results/cells/<cell>.partial.json
(the step it reached, the scores there), which the finished cell's JSON replaces.
`python -m scripts.tables` turns the cell files into docs/results/modes.md.
"""

import json
import os
import shlex
import subprocess
import sys
import time

from absl import flags
from absl import logging

from aegan_jax import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = os.path.join("experiments", "presets", "protocols")
CELL_DIR = os.path.join("docs", "results", "cells")

# (protocol, strategy entry, extra flags). Each runs on ring and grid, in this order: the
# short, published protocols first, the 400,000-step PacGAN setup last.
AE = {"strategy": "ae_pretrain", "weight_init": "default", "code_dim": 8, "latent_dim": 8,
      "code_components": 32, "code_fit_restarts": 5, "pretrain_steps": 20000,
      "ae_lr_decay": "true"}
CELLS = [
    ("unrolled", "gan", {}),
    # The orthogonal (gain 1.4) init of the Unrolled code leaves D flat on the grid (at
    # chance, like the published GAN row); flax's default init trains (docs/results/README.md).
    ("unrolled", "gan[weight_init=default]", {"weight_init": "default"}),
    ("unrolled", "bigan", {}),
    ("unrolled", "bigan[weight_init=default]", {"weight_init": "default"}),
    # The seed's question on the setup where gan trains best (flax's default init): the
    # autoencoder (the protocol's 2x128 tanh nets, code 8-D) with a 32-component mixture
    # prior, alone (--steps=0), then with the protocol's 25,000 adversarial steps after it.
    # Same seeds: the second cell's adversarial phase starts from the first cell's generator.
    ("unrolled", "ae_pretrain[steps=0]", {**AE, "steps": 0}),
    ("unrolled", "ae_pretrain", AE),
    # The same, with plain gradient descent for G at 1e-3: a step in proportion to D's
    # gradient, which is near zero when G already matches the data (Adam's is not).
    ("unrolled", "ae_pretrain[g_optimizer=sgd;g_lr=1e-3]",
     {**AE, "g_optimizer": "sgd", "g_lr": "1e-3"}),
    # The other AE strategies on the same setup and init, with what each needs of 2-D data:
    # aae's codes no wider than the data, ebgan's and began's autoencoder D a bottleneck
    # narrower than it. They alternate D and G updates in their own steps (--update is gan's).
    *((("unrolled", f"{s}[weight_init=default]",
        {"weight_init": "default", "update": "alternating", **extra}))
      for s, extra in (("mdgan", {}), ("vaegan", {}), ("aae", {"latent_dim": 2}),
                       ("ebgan", {"code_dim": 1}), ("began", {"code_dim": 1}))),
    ("veegan", "veegan", {}),
    # The same init question on the VEEGAN notebook's setup (orthogonal, gain 1.4 there too).
    ("veegan", "veegan[weight_init=default]", {"weight_init": "default"}),
    ("veegan", "gan", {"strategy": "gan"}),
    ("veegan", "gan[weight_init=default]", {"strategy": "gan", "weight_init": "default"}),
    # The rest of VEEGAN Table 1 on each setup: ALI on the VEEGAN notebook's, VEEGAN on the
    # Unrolled one (with the init under which gan trains there).
    ("veegan", "bigan", {"strategy": "bigan"}),
    ("unrolled", "veegan[weight_init=default]", {"strategy": "veegan", "weight_init": "default"}),
    ("pacgan", "gan", {}),
    ("pacgan", "gan[pack=2]", {"pack": 2}),
    ("pacgan", "gan[pack=4]", {"pack": 4}),
    ("pacgan", "bigan", {}),
]
DATASETS = ("grid", "ring")  # the grid first: 25 modes tell more than 8

flags.DEFINE_float("budget_minutes", 30.0, "Wall-clock budget of this invocation.")
flags.DEFINE_integer("seeds", 5, "Seeds per cell, as one population program.")
flags.DEFINE_string("root", "runs/cells", "Parent of the cells' workdirs.")
flags.DEFINE_string("out", CELL_DIR, "Where finished cells write their JSON.")
flags.DEFINE_list("only", [], "Run only these cells (names as --list prints them).")
flags.DEFINE_boolean("list", False, "Print the cells and their state, run nothing.")
flags.DEFINE_list("extra", [], "flag=value for every cell's training (tests: steps=200).")
FLAGS = flags.FLAGS


def cell_name(protocol: str, dataset: str, entry: str) -> str:
  tag = entry.replace("[", "_").replace("]", "").replace("=", "").replace(";", "_")
  return f"{protocol}_{dataset}_{tag}"


def all_cells() -> list[dict]:
  out = []
  for protocol, entry, overrides in CELLS:
    for dataset in DATASETS:
      strategy = overrides.get("strategy")
      out.append({"name": cell_name(protocol, dataset, entry), "protocol": protocol,
                  "dataset": dataset, "entry": entry,
                  "preset": os.path.join(PRESETS, f"{protocol}_{dataset}.flags"),
                  "flags": [f"--{k}={v}" for k, v in overrides.items()]
                  + ([f"--strategy={entry.partition('[')[0]}"] if strategy is None else [])})
  return out


def train_command(cell: dict) -> list[str]:
  workdir = os.path.join(FLAGS.root, cell["name"])
  steps = next((e.split("=", 1)[1] for e in FLAGS.extra if e.startswith("steps=")), None)
  eval_every = max(int(steps) // 4, 1) if steps else 5000  # the learning curve's points
  return ([sys.executable, "-m", "experiments.train", f"--flagfile={cell['preset']}",
           *cell["flags"], f"--population={FLAGS.seeds}", f"--workdir={workdir}",
           f"--eval_every={eval_every}", "--eval_metrics=modes"]
          + [f"--{e}" for e in FLAGS.extra])


def read_curve(workdir: str) -> list[list[dict]]:
  """Per member, the eval rows of metrics.jsonl: [{step, modes_captured, ...}, ...], one per
  step (a resumed run evaluates again what it redid after its checkpoint: the last row wins)."""
  members = sorted(d for d in os.listdir(workdir) if d.startswith("member_"))
  curves = []
  for m in members:
    path = os.path.join(workdir, m, "metrics.jsonl")
    by_step = {}
    for line in open(path) if os.path.exists(path) else ():
      try:
        r = json.loads(line)
      except json.JSONDecodeError:  # the last line of a run the budget killed mid-write
        continue
      if r.get("phase") == "eval":
        by_step[r["step"]] = {k: r[k] for k in ("step", "modes_captured",
                                                "high_quality_percent", "reverse_kl")}
    curves.append([by_step[s] for s in sorted(by_step)])
  return curves


def cell_path(cell: dict, partial: bool = False) -> str:
  return os.path.join(FLAGS.out, f"{cell['name']}{'.partial' if partial else ''}.json")


def record(cell: dict, command: list[str], wall_s: float, stopped: bool = False) -> dict:
  """Writes the cell's JSON: finished, or (stopped=True) its curve so far as .partial.json."""
  workdir = os.path.join(FLAGS.root, cell["name"])
  curves = read_curve(workdir)
  config_path = os.path.join(workdir, "member_00", "config.json")
  config = json.load(open(config_path)) if os.path.exists(config_path) else {}
  result = {**{k: cell[k] for k in ("name", "protocol", "dataset", "entry", "preset")},
            "seeds": len(curves), "final": [c[-1] for c in curves if c],
            "curve": curves, "wall_seconds": round(wall_s, 1),
            # The cores this driver could use (`taskset -c 0` gives 1): walls compare only so.
            "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count(),
            "command": " ".join(shlex.quote(a) for a in ["python"] + command[1:]),
            "config": config}
  if stopped:
    # Where the budget stopped it: the evaluated step all seeds reached, of the planned steps.
    result["in_progress"] = {"step": min((c[-1]["step"] for c in curves if c), default=0),
                             "of_steps": config.get("steps")}
  os.makedirs(FLAGS.out, exist_ok=True)
  path = cell_path(cell, partial=stopped)
  with open(path + ".tmp", "w") as f:
    json.dump(result, f, indent=1)
  os.replace(path + ".tmp", path)
  if not stopped and os.path.exists(cell_path(cell, partial=True)):
    os.remove(cell_path(cell, partial=True))
  return result


def main(argv):
  del argv
  cells = all_cells()
  if FLAGS.only:
    unknown = set(FLAGS.only) - {c["name"] for c in cells}
    if unknown:
      raise cli.UserError(f"unknown --only cell(s) {','.join(sorted(unknown))}; see --list")
    cells = [c for c in cells if c["name"] in FLAGS.only]
  done = lambda c: os.path.exists(cell_path(c))
  if FLAGS.list:
    width = max(len(c["name"]) for c in cells)
    for c in cells:
      state = ("finished" if done(c) else "stopped at step "
               f"{json.load(open(cell_path(c, True)))['in_progress']['step']:,}"
               if os.path.exists(cell_path(c, True)) else "pending")
      print(f"{c['name']:{width}s} {state}")
    return
  deadline = time.monotonic() + 60 * FLAGS.budget_minutes
  for cell in cells:
    if done(cell):
      continue
    left = deadline - time.monotonic()
    if left < 30:
      logging.warning("budget spent; next: %s (resumes from its checkpoint)", cell["name"])
      return
    command = train_command(cell)
    wall_path = os.path.join(FLAGS.root, cell["name"] + ".wall")
    spent = float(open(wall_path).read()) if os.path.exists(wall_path) else 0.0
    logging.warning("cell %s: %s", cell["name"], " ".join(command[1:]))
    start = time.monotonic()
    try:
      proc = subprocess.run(command, cwd=REPO, timeout=left)
    except subprocess.TimeoutExpired:
      proc = None
    spent += time.monotonic() - start
    os.makedirs(FLAGS.root, exist_ok=True)
    with open(wall_path, "w") as f:
      f.write(str(spent))
    if proc is None:
      r = record(cell, command, spent, stopped=True)
      logging.warning("budget spent inside %s after %.0f s at step %d; rerun to resume it",
                      cell["name"], spent, r["in_progress"]["step"])
      return
    if proc.returncode != 0:
      raise cli.UserError(f"cell {cell['name']} failed (exit {proc.returncode}); its log is "
                          f"above, its workdir {os.path.join(FLAGS.root, cell['name'])}")
    r = record(cell, command, spent)
    logging.warning("finished %s in %.0f s: %s", cell["name"], spent, r["final"])


if __name__ == "__main__":
  cli.run(main)
