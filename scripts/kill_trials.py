"""Kill -9 at random moments, resume, and check the run ends bit-identical; prints JSON.

  python -m scripts.kill_trials --trials=20 --workdir=runs/kill_trials

One uninterrupted reference run, then `--trials` runs of the same flags, each killed with
SIGKILL at a uniformly random moment of the reference's wall time (start-up, compilation,
training, a checkpoint being written, the phase change, the final save), then rerun with the
same command to the end. A trial passes when the rerun exits 0, its final checkpoint's
per-array CRC-32s (recorded with every save) equal the reference's, and metrics.jsonl holds
each (step, phase) once, in order, with the reference's steps. Each trial records where the
kill landed: before the first checkpoint, while a checkpoint was being written (an orbax
temporary folder on disk), between saves, or after the run had finished.
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from absl import flags

from aegan_jax import cli

_TRAIN = ("--dataset=ring", "--strategy=ae_pretrain", "--arch=mlp", "--mlp_hidden=64,64",
          "--latent_dim=2", "--pretrain_steps=300", "--steps=600", "--checkpoint_every=50",
          "--log_every=50", "--sample_every=300", "--eval_every=0")

_TRIALS = flags.DEFINE_integer("trials", 20, "how many kill -9 trials", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "seed of the kill moments")
_WORKDIR = flags.DEFINE_string("workdir", "runs/kill_trials",
                               "a new folder per invocation is made inside it")
_TRAIN_FLAGS = flags.DEFINE_string("train_flags", " ".join(_TRAIN),
                                   "flags of experiments.train for every run")


def _train(workdir: str, wait: bool = True):
  cmd = [sys.executable, "-m", "experiments.train", *_TRAIN_FLAGS.value.split(),
         f"--workdir={workdir}"]
  if wait:
    return subprocess.run(cmd, capture_output=True, text=True)
  return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _final(workdir: str) -> tuple[int, dict]:
  ckpt = os.path.join(workdir, "checkpoints")
  step = max(int(s) for s in os.listdir(ckpt) if s.isdigit())
  with open(os.path.join(ckpt, str(step), "checksums", "metadata")) as f:
    return step, json.load(f)["arrays"]


def _rows(workdir: str) -> list[tuple[int, str]]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [(r["step"], r["phase"]) for r in map(json.loads, f) if r]


def _moment(workdir: str, finished: bool) -> str:
  if finished:
    return "after the run finished"
  try:
    names = os.listdir(os.path.join(workdir, "checkpoints"))
  except OSError:
    return "before the first checkpoint"
  if any("tmp" in n for n in names):
    return "while a checkpoint was being written"
  return "between checkpoints" if any(n.isdigit() for n in names) else "before the first checkpoint"


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments {' '.join(argv[1:])}")
  os.makedirs(_WORKDIR.value, exist_ok=True)
  root = tempfile.mkdtemp(prefix="trials_", dir=_WORKDIR.value)  # never reuses a user's folder
  rng = random.Random(_SEED.value)

  start = time.perf_counter()
  ref = _train(os.path.join(root, "reference"))
  wall = time.perf_counter() - start
  if ref.returncode != 0:
    raise cli.UserError(f"the reference run failed: {ref.stderr.strip().splitlines()[-1]}")
  ref_step, ref_sums = _final(os.path.join(root, "reference"))
  ref_rows = _rows(os.path.join(root, "reference"))

  trials = []
  for i in range(_TRIALS.value):
    workdir = os.path.join(root, f"trial_{i:02d}")
    delay = rng.uniform(0.0, wall)
    victim = _train(workdir, wait=False)
    time.sleep(delay)
    finished = victim.poll() is not None
    moment = _moment(workdir, finished)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    rerun = _train(workdir)
    ok_exit = rerun.returncode == 0
    step, sums = _final(workdir) if ok_exit else (None, None)
    rows = _rows(workdir) if ok_exit else []
    trial = {"trial": i, "kill_after_s": round(delay, 2), "moment": moment,
             "rerun_exit": rerun.returncode, "final_step": step,
             "bit_identical": ok_exit and step == ref_step and sums == ref_sums,
             "each_step_once": ok_exit and rows == ref_rows}
    trials.append(trial)
    print(json.dumps(trial), flush=True)

  moments: dict[str, int] = {}
  for t in trials:
    moments[t["moment"]] = moments.get(t["moment"], 0) + 1
  print(json.dumps({
      "trials": len(trials), "reference_wall_s": round(wall, 1), "final_step": ref_step,
      "bit_identical": sum(t["bit_identical"] for t in trials),
      "each_step_once": sum(t["each_step_once"] for t in trials),
      "moments": moments, "workdir": root, "train_flags": _TRAIN_FLAGS.value}))


if __name__ == "__main__":
  cli.run(main)
