r"""Hyperparameter sweeps: a grid or a random search over train flags, times seeds, run and tabled.
`aegan-sweep` installed, `python -m scripts.sweep` from the repository root:

  python -m scripts.sweep --sweep='g_lr=1e-4,2e-4;strategy=gan,mdgan' --seeds=3 --parallel=2 \
      --workdir=runs/sweep_lr -- --flagfile=experiments/presets/mixture2d.flags --dataset=grid
  python -m scripts.sweep --sweep='g_lr=loguniform:1e-5:1e-3;strategy=gan,mdgan' --random=16 \
      --workdir=runs/search_lr -- --dataset=grid --steps=2000
  python -m scripts.sweep ... --print_commands   # one train command per line, for a scheduler

--sweep holds axes separated by `;`, each `field=v1,v2,...` with field a Config field (a train
flag); a tuple field separates its elements with `/` (`mlp_hidden=128/128,256`). The grid is
the product of the axes; --random=N instead draws N configurations (a listed axis uniformly,
or `uniform:a:b`, `loguniform:a:b`, `int_uniform:a:b`) from --sweep_seed. Everything after `--`
goes to every run. Run s of configuration c trains in WORKDIR/c/seed_s with `--seed=s`,
launched from this directory (normally the repository root), its output in train.log there.
A run with summary.json is finished and is not trained again; any other run is launched (and
resumes from its checkpoint). At the end WORKDIR gets sweep.csv (one row per run), sweep.md
(one row per configuration, mean ± standard error over seeds) and sweep.png; sweep.json holds
the spec, so a different sweep on the same WORKDIR is refused; the same sweep with a larger
--seeds adds the new seeds' runs to it.
"""

import concurrent.futures
import csv
import dataclasses
import difflib
import functools
import hashlib
import itertools
import json
import math
import os
import random as random_lib
import re
import shlex
import signal
import subprocess
import sys
import time
import types
from typing import Any

from absl import flags

from aegan_jax import cli
from aegan_jax import config as config_lib

FLAGS = flags.FLAGS
SWEEP_FLAGS = ("sweep", "seeds", "random", "sweep_seed", "parallel", "print_commands")

FIELDS = {f.name: type(f.default) for f in dataclasses.fields(config_lib.Config)}
DISTRIBUTIONS = {"uniform": float, "loguniform": float, "int_uniform": int}
# Flags the sweep itself sets on every run.
OWN_FLAGS = {"seed": "--seeds=S runs every configuration with --seed=0 .. S-1",
             "workdir": "the sweep gives each run WORKDIR/<config>/seed_<s>"}
MAX_NAME = 80
MAX_PANELS = 8


@dataclasses.dataclass(frozen=True)
class Axis:
  """One swept field: listed values, or a distribution (dist, low, high) for random search."""
  name: str
  values: tuple = ()
  dist: str = ""
  low: float = 0.0
  high: float = 0.0

  def to_json(self) -> dict:
    if self.dist:
      return {"name": self.name, "dist": self.dist, "low": self.low, "high": self.high}
    return {"name": self.name, "values": [flag_text(v) for v in self.values]}


# ----------------------------------------------------------------------------- flags and values


def _config_flag_values() -> flags.FlagValues:
  """A private FlagValues with every train flag, so values are parsed exactly as training does."""
  fv = flags.FlagValues()
  into = types.SimpleNamespace(**{
      name: functools.partial(getattr(flags, name), flag_values=fv)
      for name in ("DEFINE_integer", "DEFINE_float", "DEFINE_string", "DEFINE_boolean",
                   "DEFINE_list")})
  config_lib.define_flags(into)
  flags.DEFINE_string("workdir", None, "", flag_values=fv)
  return fv


def _is_absl_flag(name: str) -> bool:
  """Flags absl itself gives every entry point (--v, --logtostderr, ...): allowed, passed on."""
  return (FLAGS.find_module_defining_flag(name) or "").startswith("absl.")


def parse_train_flags(args: list[str], where: str) -> flags.FlagValues:
  """Parses train flags (flagfiles too) as experiments.train would; UserError on a bad one."""
  fv = _config_flag_values()
  try:
    rest = fv(["sweep"] + list(args), known_only=True)[1:]
  except flags.Error as e:
    raise cli.UserError(f"{where}: {e}") from None
  for arg in rest:
    name = arg.lstrip("-").split("=", 1)[0]
    if not arg.startswith("-"):
      raise cli.UserError(f"{where}: unexpected argument {arg!r}; flags look like --steps=100")
    if name in SWEEP_FLAGS:
      raise cli.UserError(f"{where}: --{name} is a flag of the sweep; put it before --")
    if not (_is_absl_flag(name) or _is_absl_flag(name.removeprefix("no"))):
      raise cli.UserError(f"{where}: unknown train flag {arg!r}{_suggest(name)}")
  return fv


def _suggest(name: str) -> str:
  close = difflib.get_close_matches(name, FIELDS, n=1)
  return f" (did you mean {close[0]}?)" if close else ""


KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
              tuple: "integers joined by / (such as 128/128)"}


def parse_value(name: str, text: str) -> Any:
  """One --sweep value as its field's type, through the train flag parser ('/' joins tuples)."""
  flag = text.replace("/", ",") if FIELDS[name] is tuple else text
  try:
    return getattr(config_lib.from_flags(parse_train_flags([f"--{name}={flag}"], "")), name)
  except cli.UserError:
    raise cli.UserError(f"--sweep {name}={text}: a value of {name} is "
                        f"{KIND_WORDS[FIELDS[name]]}") from None


def flag_text(value: Any) -> str:
  """The value as a train flag reads it: repr for floats keeps every digit of a sample."""
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, tuple):
    return ",".join(map(str, value))
  return repr(value) if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- the spec


def parse_spec(text: str) -> list[Axis]:
  """'g_lr=1e-4,2e-4;d_lr=loguniform:1e-5:1e-3' -> axes, in the order given."""
  axes = []
  for item in (s.strip() for s in text.split(";")):
    if not item:
      continue
    name, eq, rest = (s.strip() for s in item.partition("="))
    if not eq:
      raise cli.UserError(f"--sweep axis {item!r} is not field=v1,v2,...")
    if name not in FIELDS:
      raise cli.UserError(f"--sweep: unknown field {name!r}{_suggest(name)}; the fields are the "
                          f"train flags (aegan_jax/config.py, python -m experiments.train "
                          f"--helpfull)")
    if name in OWN_FLAGS:
      raise cli.UserError(f"--sweep may not set {name}: {OWN_FLAGS[name]}")
    if name in (a.name for a in axes):
      raise cli.UserError(f"--sweep names {name} twice; list all its values in one axis")
    axes.append(_parse_distribution(name, rest) if rest.split(":")[0] in DISTRIBUTIONS
                else _parse_list(name, rest))
  return axes


def _parse_list(name: str, text: str) -> Axis:
  items = [s.strip() for s in text.split(",")]
  if not text.strip() or not all(items):
    raise cli.UserError(f"--sweep {name}={text}: empty value; write {name}=v1,v2,...")
  values = [parse_value(name, s) for s in items]
  for v in values:
    if values.count(v) > 1:
      raise cli.UserError(f"--sweep {name} lists {flag_text(v)} twice")
  return Axis(name, values=tuple(values))


def _parse_distribution(name: str, text: str) -> Axis:
  dist, *bounds = text.split(":")
  kind = DISTRIBUTIONS[dist]
  if FIELDS[name] is not kind:
    want = "int_uniform" if FIELDS[name] is int else "a list of values"
    raise cli.UserError(f"--sweep {name}={text}: {dist} draws {kind.__name__}s but {name} is "
                        f"{FIELDS[name].__name__}; use {want}")
  try:
    low, high = (kind(b) for b in bounds)
  except ValueError:
    raise cli.UserError(f"--sweep {name}={text}: write {dist}:LOW:HIGH with {kind.__name__} "
                        f"bounds") from None
  if not (low < high or (dist == "int_uniform" and low == high)):
    raise cli.UserError(f"--sweep {name}={text}: LOW must be below HIGH")
  if dist == "loguniform" and low <= 0:
    raise cli.UserError(f"--sweep {name}={text}: loguniform needs LOW > 0")
  return Axis(name, dist=dist, low=low, high=high)


def expand_grid(axes: list[Axis]) -> list[dict[str, Any]]:
  """The product of the axes, the last varying fastest; no axes = one default configuration."""
  for a in axes:
    if a.dist:
      raise cli.UserError(f"--sweep {a.name}={a.dist}:{a.low}:{a.high} is a distribution; "
                          f"sample it with --random=N (or list values)")
  return [dict(zip([a.name for a in axes], combo)) for combo in
          itertools.product(*(a.values for a in axes))]


def sample_random(axes: list[Axis], n: int, seed: int) -> list[dict[str, Any]]:
  """n configurations drawn from the axes; the same (axes, n, seed) always give the same ones."""
  if not axes:
    raise cli.UserError("--random needs axes in --sweep to sample from")
  rng = random_lib.Random(seed)  # its random() and randrange() are stable across Pythons
  return [{a.name: _draw(a, rng) for a in axes} for _ in range(n)]


def _draw(axis: Axis, rng: random_lib.Random) -> Any:
  if not axis.dist:
    return axis.values[rng.randrange(len(axis.values))]
  if axis.dist == "int_uniform":
    return rng.randint(int(axis.low), int(axis.high))
  lo, hi = ((math.log(axis.low), math.log(axis.high)) if axis.dist == "loguniform"
            else (axis.low, axis.high))
  x = lo + (hi - lo) * rng.random()
  x = math.exp(x) if axis.dist == "loguniform" else x
  # Four significant digits keep names and tables readable; rounding cannot leave [low, high].
  return min(max(float(f"{x:.4g}"), axis.low), axis.high)


# ----------------------------------------------------------------------------- names, commands


def config_name(values: dict[str, Any], index: int | None = None, width: int = 3) -> str:
  """'g_lr=0.0001,strategy=gan' (random search: 'r007_...'); hashed when long or unsafe."""
  label = lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else flag_text(v)  # noqa: E731
  name = ",".join(f"{k}={label(v)}" for k, v in values.items()) or "default"
  if index is not None:
    name = f"r{index:0{width}d}_{name}"
  safe = re.sub(r"[^A-Za-z0-9._,=+-]", "_", name)
  if safe != name or len(name) > MAX_NAME:
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    safe = f"{safe[:MAX_NAME - 9]}_{digest}"
  return safe


def name_configs(configs: list[dict[str, Any]], random_search: bool) -> list[str]:
  width = max(3, len(str(len(configs) - 1)))
  names = [config_name(c, i if random_search else None, width) for i, c in enumerate(configs)]
  if len(set(names)) != len(names):  # only distinct values whose labels collide; never silent
    raise cli.UserError(f"--sweep gives two configurations the same directory name "
                        f"({sorted(n for n in names if names.count(n) > 1)[0]}); list distinct "
                        f"values")
  return names


def train_command(workdir: str, common: list[str], values: dict[str, Any], seed: int) -> list[str]:
  """The argv of one run: swept values after the common flags, so they win over a preset's."""
  return ([sys.executable, "-m", "aegan_jax.commands.train", f"--workdir={workdir}", *common]
          + [f"--{k}={flag_text(v)}" for k, v in values.items()] + [f"--seed={seed}"])


def plan_runs(root: str, names: list[str], configs: list[dict], seeds: int,
              common: list[str]) -> list[dict]:
  runs = []
  for name, values in zip(names, configs):
    for s in range(seeds):
      workdir = os.path.join(root, name, f"seed_{s}")
      runs.append({"config": name, "values": values, "seed": s, "workdir": workdir,
                   "command": train_command(workdir, common, values, s)})
  return runs


def shell_line(command: list[str]) -> str:
  """The argv as one line a shell runs as it is (every argument quoted where needed)."""
  return " ".join(shlex.quote(a) for a in command)


# ----------------------------------------------------------------------------- validation


def check_common(common: list[str]) -> None:
  fv = parse_train_flags(common, "the train flags after --")
  for name, why in OWN_FLAGS.items():
    if fv[name].present:
      raise cli.UserError(f"--{name} may not be among the train flags after --: {why}")


def validate_configs(common: list[str], names: list[str], configs: list[dict]) -> None:
  """Each configuration with the common flags, as the trainer would check it before training."""
  from aegan_jax import train  # after the cheap checks: it imports JAX (~2 s)
  for name, values in zip(names, configs):
    args = common + [f"--{k}={flag_text(v)}" for k, v in values.items()]
    try:
      config = config_lib.from_flags(parse_train_flags(args, f"configuration {name}"))
      train.check_names(config_lib.validate(config))
    except cli.UserError as e:
      raise cli.UserError(f"configuration {name}: {e}") from None


def sweep_spec(axes: list[Axis], common: list[str], seeds: int, random: int,
               sweep_seed: int) -> dict:
  """What decides the runs: a second invocation on the same root must give the same."""
  spec = {"axes": [a.to_json() for a in axes], "seeds": seeds, "random": random,
          "common": list(common)}
  if random:
    spec["sweep_seed"] = sweep_seed  # the grid does not depend on it
  return spec


def check_root(root: str, spec: dict) -> None:
  """Refuses a root holding another sweep (or anything but a sweep); reads, never writes."""
  if os.path.exists(root) and not os.path.isdir(root):
    raise cli.UserError(f"--workdir {root} is a file; give a directory")
  path = os.path.join(root, "sweep.json")
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)["spec"]
    spec = json.loads(json.dumps(spec))
    if {**saved, "seeds": spec["seeds"]} != spec:
      raise cli.UserError(f"{root} holds another sweep (its spec is in {path}); give a new "
                          f"--workdir, or repeat that sweep's flags to resume it (--seeds may "
                          f"grow)")
    # More seeds extend the sweep: the runs it has keep their workdirs and are not retrained.
    if spec["seeds"] < saved["seeds"]:
      raise cli.UserError(f"{root} holds this sweep with --seeds={saved['seeds']}; --seeds can "
                          f"grow to add seeds, not shrink: give --seeds={saved['seeds']} or more")
  elif os.path.isdir(root) and os.listdir(root):
    raise cli.UserError(f"{root} is not empty and holds no sweep.json; give a new --workdir")


# ----------------------------------------------------------------------------- running


def is_finished(workdir: str) -> bool:
  return os.path.exists(os.path.join(workdir, "summary.json"))


_RUNNING: set[subprocess.Popen] = set()  # the training processes now running, for stop_all


def launch(command: list[str], workdir: str, env: dict | None = None) -> tuple[int, str]:
  """Runs one training process, output appended to workdir/train.log; (exit code, last line)."""
  os.makedirs(workdir, exist_ok=True)
  log_path = os.path.join(workdir, "train.log")
  with open(log_path, "a") as log:
    log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {shell_line(command)}\n")
    log.flush()
    # The sweep's own working directory (normally the repository root): relative paths in the
    # common flags and --workdir mean to each run what they meant when the sweep checked them.
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    _RUNNING.add(proc)
    try:
      code = proc.wait()
    finally:
      _RUNNING.discard(proc)
  if code == 0 and not is_finished(workdir):
    return 1, "exited without writing summary.json (stopped early?)"
  return code, last_line(log_path)


def last_line(path: str) -> str:
  with open(path, errors="replace") as f:
    lines = [line.strip() for line in f if line.strip()]
  return lines[-1] if lines else ""


def run_env(parallel: int) -> dict:
  env = dict(os.environ)
  # JAX takes 75% of a GPU's memory per process by default: two would not fit on one GPU.
  if parallel > 1 and not any(k in env for k in ("XLA_PYTHON_CLIENT_PREALLOCATE",
                                                 "XLA_PYTHON_CLIENT_MEM_FRACTION",
                                                 "XLA_CLIENT_MEM_FRACTION")):
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
  return env


def run_all(runs: list[dict], parallel: int) -> dict[str, str]:
  """Launches every unfinished run, `parallel` at a time; {workdir: last line} of failed ones."""
  env = run_env(parallel)
  failed = {}

  def one(i_run):
    i, run = i_run
    start = time.perf_counter()
    say(f"[{i + 1}/{len(runs)}] start {run['config']} seed {run['seed']}")
    code, line = launch(run["command"], run["workdir"], env)
    took = f"{time.perf_counter() - start:.0f} s"
    say(f"[{i + 1}/{len(runs)}] " + (f"done {run['config']} seed {run['seed']} ({took})"
                                     if code == 0 else f"FAILED {run['config']} seed "
                                     f"{run['seed']} ({took}, exit {code}): {line}"))
    return run["workdir"], code, line

  with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
    futures = [pool.submit(one, i_run) for i_run in enumerate(runs)]
    try:
      for future in futures:
        workdir, code, line = future.result()
        if code != 0:
          failed[workdir] = line
    except KeyboardInterrupt:
      # Without this the pool would go on starting the queued runs after Ctrl-C.
      pool.shutdown(wait=False, cancel_futures=True)
      for proc in list(_RUNNING):
        proc.terminate()  # the trainer saves a checkpoint on SIGTERM: the run resumes later
      raise
  return failed


def interrupt_on_sigterm() -> None:
  """SIGTERM to the sweep (a scheduler's preemption) stops it as Ctrl-C does."""
  def handler(signum, frame):
    raise KeyboardInterrupt
  signal.signal(signal.SIGTERM, handler)


def say(message: str) -> None:
  """Progress goes to stderr: stdout holds only the result (the table, or the commands)."""
  print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- summarizing


def read_result(run: dict, failed: dict[str, str]) -> dict:
  """The run's row: status, final metrics (summary.json) and the phase it ended in."""
  row = {**run, "status": "failed", "final": {}, "last_phase": "",
         "error": failed.get(run["workdir"], "")}
  path = os.path.join(run["workdir"], "summary.json")
  if run["workdir"] in failed or not os.path.exists(path):
    return row
  with open(path) as f:
    # float(): summary.json keeps NaN and inf as the strings 'nan' and 'inf'.
    row["final"] = {k: float(v) for k, v in json.load(f)["final"].items()}
  row["status"] = "done"
  row["last_phase"] = last_phase(os.path.join(run["workdir"], "metrics.jsonl"))
  return row


def is_eval_phase(phase: str) -> bool:
  return phase == "eval" or phase.endswith("_eval")


def last_phase(metrics_path: str) -> str:
  """The last training phase in metrics.jsonl: whose losses are the run's final ones."""
  phase = ""
  if os.path.exists(metrics_path):
    with open(metrics_path) as f:
      for line in f:
        if line.strip() and not is_eval_phase(p := json.loads(line)["phase"]):
          phase = p
  return phase


def table_metrics(rows: list[dict]) -> list[str]:
  """Evaluation metrics first, then the losses of each run's last phase; no throughput."""
  evals, losses = set(), set()
  for r in rows:
    for key in r["final"]:
      phase, _, metric = key.partition("/")
      if is_eval_phase(phase):
        evals.add(key)
      elif phase == r["last_phase"] and "loss" in metric:
        losses.add(key)
  return sorted(evals) + sorted(losses)


def mean_se(values: list[float]) -> tuple[float, float | None]:
  """Mean and standard error (sample std, ddof=1, over sqrt(n)); no error for one value."""
  n = len(values)
  mean = sum(values) / n
  if n == 1:
    return mean, None
  return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def cell(values: list[float]) -> str:
  """'mean ± se' over the finite values; non-finite seeds (a diverged metric) are counted."""
  finite = [v for v in values if math.isfinite(v)]
  if not finite:
    return "—" if not values else "non-finite"
  mean, se = mean_se(finite)
  out = f"{mean:.4g}" if se is None else f"{mean:.4g} ± {se:.2g}"
  return out if len(finite) == len(values) else f"{out} ({len(values) - len(finite)} non-finite)"


def group(rows: list[dict]) -> dict[str, list[dict]]:
  """Rows by configuration, in plan order."""
  out: dict[str, list[dict]] = {}
  for r in rows:
    out.setdefault(r["config"], []).append(r)
  return out


def markdown(rows: list[dict], axes: list[Axis], command: str, random_search: bool) -> str:
  metrics = table_metrics(rows)
  keys = ([] if axes and not random_search else ["config"]) + [a.name for a in axes]
  header = keys + ["seeds"] + metrics
  lines = ["Produced by:", "", "```", command, "```", "",
           "Final values (summary.json) as mean ± standard error over seeds (sample std / "
           "sqrt(n)); seeds = finished runs of the configuration. Per-run values: sweep.csv.", "",
           "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for name, runs in group(rows).items():
    done = [r for r in runs if r["status"] == "done"]
    short = name.split("_", 1)[0] if random_search else name  # r007: the values follow
    head = [short if k == "config" else flag_text(runs[0]["values"][k]) for k in keys]
    cells = [cell([r["final"][m] for r in done if m in r["final"]]) for m in metrics]
    seeds = f"{len(done)}" + (f" ({len(runs) - len(done)} failed)" if len(done) < len(runs) else "")
    lines.append("| " + " | ".join(head + [seeds] + cells) + " |")
  failed = [r for r in rows if r["status"] != "done"]
  if failed:
    lines += ["", "Failed runs:", ""] + [f"- `{r['workdir']}`: {r['error']}" for r in failed]
  return "\n".join(lines) + "\n"


def write_csv(path: str, rows: list[dict], axes: list[Axis]) -> None:
  metrics = sorted({k for r in rows for k in r["final"]})
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["config"] + [a.name for a in axes] + ["seed", "status", "workdir"] + metrics)
    for r in rows:
      w.writerow([r["config"]] + [flag_text(r["values"][a.name]) for a in axes]
                 + [r["seed"], r["status"], r["workdir"]]
                 + [repr(r["final"][m]) if m in r["final"] else "" for m in metrics])


def plot(path: str, rows: list[dict]) -> bool:
  """One panel per table metric (at most MAX_PANELS): configurations down y, mean ± se bars."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  metrics = table_metrics(rows)[:MAX_PANELS]
  groups = {n: [r for r in rs if r["status"] == "done"] for n, rs in group(rows).items()}
  groups = {n: rs for n, rs in groups.items() if rs}
  if not metrics or not groups:
    return False
  # Configurations down the y axis, so their names read horizontally at a legible size; the
  # first configuration on top, in every panel.
  labels = [n if len(n) <= 40 else n[:37] + "..." for n in groups]
  cols = min(3, len(metrics))
  nrows = math.ceil(len(metrics) / cols)
  height = max(2.4, 0.3 * len(groups) + 1.3)
  fig, axs = plt.subplots(nrows, cols, figsize=(3.4 * cols + 0.075 * max(map(len, labels)),
                                               height * nrows),
                          dpi=100, squeeze=False, sharey=True)
  for ax, metric in zip(axs.flat, metrics):
    ys, means, errs = [], [], []
    for i, rs in enumerate(groups.values()):
      vals = [r["final"][metric] for r in rs
              if metric in r["final"] and math.isfinite(r["final"][metric])]
      if vals:
        mean, se = mean_se(vals)
        ys.append(i)
        means.append(mean)
        errs.append(se or 0.0)
    ax.errorbar(means, ys, xerr=errs, fmt="o", capsize=3)
    ax.set_title(metric, fontsize=10)
    ax.set_xlabel("mean ± s.e. over seeds", fontsize=9)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
  for ax in list(axs.flat)[len(metrics):]:
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return True


def write_outputs(root: str, runs: list[dict], failed: dict[str, str], axes: list[Axis],
                  command: str, random_search: bool) -> list[dict]:
  rows = [read_result(r, failed) for r in runs]
  write_csv(os.path.join(root, "sweep.csv"), rows, axes)
  table = markdown(rows, axes, command, random_search)
  with open(os.path.join(root, "sweep.md"), "w") as f:
    f.write(table)
  if not plot(os.path.join(root, "sweep.png"), rows):
    say("no finished run has metrics: no sweep.png")
  print(table, end="", flush=True)
  return rows


def write_plan(root: str, spec: dict, runs: list[dict], command: str) -> None:
  os.makedirs(root, exist_ok=True)
  plan = {"spec": spec, "command": command,
          "runs": [{"config": r["config"], "seed": r["seed"], "workdir": r["workdir"],
                    "values": {k: flag_text(v) for k, v in r["values"].items()}} for r in runs]}
  with open(os.path.join(root, "sweep.json"), "w") as f:
    json.dump(plan, f, indent=1)


# ----------------------------------------------------------------------------- main


def define_flags() -> None:
  """The sweep's own flags; defined when run, so importing the module (tests) defines none."""
  flags.DEFINE_string("sweep", "", "Axes 'field=v1,v2;field=uniform:a:b;...' over train flags.")
  flags.DEFINE_integer("seeds", 1, "Seeds per configuration: --seed=0 .. seeds-1.")
  flags.DEFINE_integer("random", 0, "Random search: this many configurations sampled from the "
                       "axes instead of the grid; 0 = grid.")
  flags.DEFINE_integer("sweep_seed", 0, "Seed of the random search's sampling.")
  flags.DEFINE_integer("parallel", 1, "Training processes run at once on this machine.")
  flags.DEFINE_boolean("print_commands", False, "Print one train command per line (for a cluster "
                       "scheduler) and exit without training.")
  flags.DEFINE_string("workdir", None, "The sweep's root: a subdirectory per run, and the tables.")


def check_own_flags() -> None:
  if not FLAGS.workdir:
    raise cli.UserError("--workdir is required: the sweep's root directory")
  for name, lowest in (("seeds", 1), ("parallel", 1), ("random", 0)):
    if FLAGS[name].value < lowest:
      raise cli.UserError(f"--{name} must be >= {lowest}, got {FLAGS[name].value}")


def main(argv):
  common = argv[1:]  # absl leaves what follows `--` here
  check_own_flags()
  check_common(common)
  axes = parse_spec(FLAGS.sweep)
  configs = (sample_random(axes, FLAGS.random, FLAGS.sweep_seed) if FLAGS.random
             else expand_grid(axes))
  names = name_configs(configs, bool(FLAGS.random))
  root = FLAGS.workdir
  spec = sweep_spec(axes, common, FLAGS.seeds, FLAGS.random, FLAGS.sweep_seed)
  check_root(root, spec)
  validate_configs(common, names, configs)
  runs = plan_runs(root, names, configs, FLAGS.seeds, common)
  command = shell_line(["python", "-m", "scripts.sweep", *sys.argv[1:]])
  write_plan(root, spec, runs, command)
  if FLAGS.print_commands:
    for r in runs:
      print(shell_line(["python", *r["command"][1:]]))
    return
  todo = [r for r in runs if not is_finished(r["workdir"])]
  say(f"{len(runs)} runs ({len(configs)} configurations x {FLAGS.seeds} seeds); skipped "
      f"{len(runs) - len(todo)} finished runs; "
      + (f"launching {len(todo)}, {FLAGS.parallel} at a time" if todo else "nothing to launch"))
  interrupt_on_sigterm()
  try:
    failed = run_all(todo, FLAGS.parallel) if todo else {}
  except KeyboardInterrupt:
    say("interrupted: no new run started and the running ones were stopped; the same command "
        "resumes the sweep (each run from its last checkpoint)")
    sys.exit(130)
  write_outputs(root, runs, failed, axes, command, bool(FLAGS.random))
  if failed:
    say(f"{len(failed)} of {len(runs)} runs failed:")
    for workdir, line in failed.items():
      say(f"  {workdir}: {line}")
    sys.exit(1)


def entry() -> None:
  """The console script `aegan-sweep`; also `python -m scripts.sweep` (repository root) and
  `python -m aegan_jax.commands.sweep`."""
  define_flags()
  cli.run(main, __name__)


if __name__ == "__main__":
  entry()
