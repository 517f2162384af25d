"""The 2-D mode tables, from the finished cells on disk: `python -m scripts.tables`.

Reads docs/results/cells/*.json (written by scripts.reproduce), and writes
docs/results/modes.md: per protocol and dataset, every cell of scripts.reproduce's plan
(mean ± standard error over its seeds of modes, % HQ and reverse KL, its steps and wall
time), "pending" for the cells not run yet, "stopped at step N" with the scores there for
the cells the budget stopped (their .partial.json), the chance row, and the published rows of
the same protocol. Rows below three times chance's % HQ are marked "at chance". The long
protocols (PacGAN's 400,000 steps) also get their learning curves.
"""

import glob
import json
import os

from absl import flags
import numpy as np

from aegan_jax import cli
from scripts import reproduce
from scripts.mode_tables import PUBLISHED, chance_rows, display_name, is_at_chance

flags.DEFINE_string("cells", reproduce.CELL_DIR, "Directory of the finished cells' JSON.")
flags.DEFINE_string("table", os.path.join("docs", "results", "modes.md"), "Table to write.")
FLAGS = flags.FLAGS

PROTOCOL_TITLES = {
    "unrolled": ("The Unrolled GAN / GDPP setup", ("VEEGAN Table 1", "GDPP")),
    "veegan": ("The VEEGAN authors' notebook setup", ("VEEGAN Table 1",)),
    "pacgan": ("The PacGAN / ALI setup", ("PacGAN Table 1",)),
}
COLUMNS = ("modes_captured", "high_quality_percent", "reverse_kl")
CURVE_PROTOCOLS = ("pacgan",)  # the protocols whose learning curves are tabled
CURVE_STEPS = (5000, 10000, 25000, 50000, 100000, 200000, 300000, 400000)


def cores(cell: dict) -> str:
  """The CPU cores the cell's driver could use (cells of 2026-12-04/05 ran with `taskset -c 0`
  beside other work, but the early ones did not record it)."""
  n = cell.get("cpu_cores")
  return f"{n} CPU core{'s' if n != 1 else ''}" if n else "cores not recorded"


def mean_se(values) -> str:
  # float(): the cells keep NaN (reverse KL with no high-quality sample) as the string 'nan'.
  v = np.asarray([float(x) for x in values if x is not None and np.isfinite(float(x))],
                 np.float64)
  # A seed without any high-quality sample has no reverse KL: say how many are left out.
  missing = len(values) - len(v)
  note = f" ({missing} of {len(values)} seeds undefined: no HQ sample)" if missing else ""
  if not len(v):
    return "undefined"
  if len(v) == 1:
    return f"{v[0]:.3g}{note}"
  return f"{v.mean():.3g} ± {v.std(ddof=1) / np.sqrt(len(v)):.2g}{note}"


def protocol_table(protocol: str, cells: dict, chance: dict) -> list[str]:
  title, sources = PROTOCOL_TITLES[protocol]
  lines = [f"## {title}", ""]
  for dataset in reproduce.DATASETS:
    lines += [f"### {dataset}", "",
              "| method | seeds | steps | wall | modes | % HQ | reverse KL |",
              "|---|---|---|---|---|---|---|"]
    for c in reproduce.all_cells():
      if c["protocol"] != protocol or c["dataset"] != dataset:
        continue
      r = cells.get(c["name"])
      name = f"**{display_name(c['entry'])}** (ours)"
      if r is None:
        lines.append(f"| {name} | pending | | | | | |")
        continue
      final = r["final"]
      if not final:
        lines.append(f"| {name} — stopped before its first evaluation | {r['seeds']} | | "
                     f"{r['wall_seconds'] / 60:.1f} min | | | |")
        continue
      mark = " — *at chance*" if is_at_chance(final, chance[dataset]) else ""
      if "in_progress" in r:
        mark += (f" — *stopped at step {r['in_progress']['step']:,} of "
                 f"{r['in_progress']['of_steps']:,}*")
      lines.append(f"| {name}{mark} | {r['seeds']} | {final[0]['step']:,} | "
                   f"{r['wall_seconds'] / 60:.1f} min for all seeds, {cores(r)} | "
                   + " | ".join(mean_se([f[k] for f in final]) for k in COLUMNS) + " |")
    lines.append("| uniform cloud over the data's bounding box (chance) | 5 draws | | | "
                 + " | ".join(mean_se([f[k] for f in chance[dataset]]) for k in COLUMNS) + " |")
    offset = 0 if dataset == "ring" else 3
    for row in PUBLISHED:
      if row[1] in sources:
        vals = row[2 + offset:5 + offset]
        lines.append(f"| {row[0]} ({row[1]}) | published | | | "
                     + " | ".join("—" if v is None else str(v) for v in vals) + " |")
    lines.append("")
    if protocol in CURVE_PROTOCOLS:
      lines += learning_curves(protocol, dataset, cells)
  return lines


def learning_curves(protocol: str, dataset: str, cells: dict) -> list[str]:
  """Mean ± s.e. over seeds at the CURVE_STEPS each cell (finished or stopped) has passed, and
  at the last step all its seeds reached."""
  rows = []
  for c in reproduce.all_cells():
    r = cells.get(c["name"])
    if c["protocol"] != protocol or c["dataset"] != dataset or r is None:
      continue
    reached = min((curve[-1]["step"] for curve in r["curve"] if curve), default=0)
    for step in sorted({s for s in CURVE_STEPS if s < reached} | {reached}):
      at = [p for curve in r["curve"] for p in curve if p["step"] == step]
      if len(at) == r["seeds"]:
        rows.append(f"| {display_name(c['entry'])} | {step:,} | "
                    + " | ".join(mean_se([p[k] for p in at]) for k in COLUMNS) + " |")
  if not rows:
    return []
  return [f"Learning curves on the {dataset} (mean ± s.e. over the seeds at each step):", "",
          "| method | step | modes | % HQ | reverse KL |", "|---|---|---|---|---|", *rows, ""]


def main(argv):
  del argv
  cells = {}
  # Stopped cells first, so a finished cell's JSON replaces a partial one left beside it.
  paths = sorted(glob.glob(os.path.join(FLAGS.cells, "*.json")),
                 key=lambda p: (not p.endswith(".partial.json"), p))
  for path in paths:
    with open(path) as f:
      r = json.load(f)
    cells[r["name"]] = r
  chance = {d: chance_rows(d) for d in reproduce.DATASETS}
  lines = [
      "# Mode collapse on the 2-D ring and grid, on the published setups", "",
      "Regenerate: `python -m scripts.tables` (reads `docs/results/cells/*.json`); run or resume "
      "the pending cells: `python -m scripts.reproduce --budget_minutes=30`. Each cell's JSON "
      "holds its exact command, per-seed scores and learning curve; a cell the budget stopped "
      "(`<cell>.partial.json`) shows the step it reached and its scores there, and the same "
      "command resumes it from its last checkpoint.", "",
      "Protocol (VEEGAN): per seed 2,500 generator samples; a sample is high quality (HQ) "
      "within 3 std of its nearest mode mean (ring std 0.01, grid std 0.05); a mode is captured "
      "if it is the nearest mean of at least one HQ sample; reverse KL = KL(p_HQ || uniform) "
      "in nats. Ours: mean ± standard error over seeds, trained as one population program. "
      "The setups are the presets under `experiments/presets/protocols/` (each file's header "
      "names the paper, the networks and the measured cost). *At chance*: mean % HQ below "
      "three times the chance row's; why each such row is there: `docs/results/README.md`.", ""]
  for protocol in PROTOCOL_TITLES:
    lines += protocol_table(protocol, cells, chance)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.table)), exist_ok=True)
  with open(FLAGS.table, "w") as f:
    f.write("\n".join(lines))
  print("\n".join(lines))


if __name__ == "__main__":
  cli.run(main)
