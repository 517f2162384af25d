"""Data parallel over devices and processes: the same numbers as one device.

Several CPU devices exist only if XLA_FLAGS is set before JAX starts, so these tests run their
training in fresh interpreters (this one keeps its single device).
"""

import json
import os

import numpy as np

from tests.conftest import cpu_devices, run_module

EIGHT = cpu_devices(8)

# Each tiny run on 1 device and on all 8: gan with dcgan, whose generator's BatchNorm must see
# the global batch, and ae_pretrain (pretraining, the code-prior fit, then the GAN) with mlp.
# log_every=1 keeps every step's losses. (ae_pretrain with dcgan is not used: its encoder's last
# bias feeds a BatchNorm'd layer, so its gradient is exactly zero and Adam turns rounding noise
# into lr-sized steps on any device count.)
_DP_CODE = """
import json, sys, jax, numpy as np
from aegan_jax import parallel, train
from aegan_jax.config import Config
common = dict(data_dir=sys.argv[2], batch_size=32, log_every=1, sample_every=100,
              checkpoint_every=100, eval_every=0)
configs = {"gan_dcgan": Config(dataset="mnist5k", strategy="gan", arch="dcgan", dcgan_channels=8,
                               latent_dim=16, steps=5, **common),
           "ae_pretrain_mlp": Config(dataset="mnist5k", strategy="ae_pretrain", mlp_hidden=(64,),
                                     code_dim=8, latent_dim=8, pretrain_steps=3, steps=3, **common)}
result = {"devices": len(jax.devices())}
for name, cfg in configs.items():
  one = train.train_and_evaluate(cfg, f"{sys.argv[3]}/{name}_one",
                                 parallel.DataParallel.create(jax.devices()[:1]))
  all_ = train.train_and_evaluate(cfg, f"{sys.argv[3]}/{name}_all", parallel.DataParallel.create())
  result[name] = {"mesh": sorted({x.sharding.mesh.size for x in jax.tree.leaves(all_)}),
                  "max_param_diff": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                                        for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(all_)))}
# A population of 8 is spread over the 8 devices, one member each.
pop = Config(dataset="grid", strategy="gan", mlp_hidden=(16,), latent_dim=4, steps=5, **common)
one = train.train_members(pop, sys.argv[3] + "/pop_one", 8, dp=parallel.DataParallel.create(jax.devices()[:1]))
all_ = train.train_members(pop, sys.argv[3] + "/pop_all", 8, dp=parallel.DataParallel.create())
result["population"] = {"spread": parallel.DataParallel.create().spreads(8), "max_param_diff": max(
    float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    for x, y in zip(one, all_) for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y)))}
print(json.dumps(result))
"""


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if r["phase"] != "pretrain_eval"]


def test_eight_devices_match_one_device(data_dir, tmp_path):
  script = tmp_path / "dp.py"
  script.write_text(_DP_CODE)
  proc = run_module("tests._run_code", f"exec(open({str(script)!r}).read())", data_dir,
                    str(tmp_path), data_dir=data_dir, env=EIGHT, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result["devices"] == 8
  for name, steps in [("gan_dcgan", 5), ("ae_pretrain_mlp", 6)]:
    assert result[name]["mesh"] == [8], name  # the state lives on all 8 devices
    assert result[name]["max_param_diff"] < 1e-5, (name, result[name])
    one, all_ = _losses(tmp_path / f"{name}_one"), _losses(tmp_path / f"{name}_all")
    assert [r["step"] for r in one] == [r["step"] for r in all_] == list(range(1, steps + 1))
    for a, b in zip(one, all_):
      for k, v in a.items():
        if k not in ("step", "phase", "steps_per_sec"):
          assert abs(v - b[k]) <= 1e-5 * max(1.0, abs(v)), (name, a["step"], k, v, b[k])
  assert result["population"]["max_param_diff"] < 1e-5
  assert result["population"]["spread"]


def test_batch_that_does_not_split_over_devices_is_refused(tmp_path):
  proc = run_module("experiments.train", f"--workdir={tmp_path / 'w'}", "--dataset=grid",
                    "--batch_size=30", env=EIGHT)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: --batch_size=30 does not split evenly over 8 devices; use a multiple of 8")
  assert "Traceback" not in proc.stderr
  assert not os.path.exists(tmp_path / "w")


# ae_pretrain: pretraining, the host-side code-prior fit, the held-out reconstruction and the
# mode evaluation all run in every process.
MP_FLAGS = ["--dataset=grid", "--strategy=ae_pretrain", "--mlp_hidden=32", "--code_dim=4",
            "--latent_dim=4", "--batch_size=64", "--pretrain_steps=20", "--log_every=10",
            "--sample_every=10", "--checkpoint_every=20", "--eval_every=10"]


def _params(workdir, process):
  with np.load(os.path.join(workdir, f"params_{process}.npz")) as f:
    return dict(f)


def test_two_processes_match_one_and_resume(tmp_path):
  """2 processes on 127.0.0.1 (gloo): identical parameters in both, equal to 1 process, and a
  second launch with more steps resumes from the checkpoint of the first."""
  single, multi = str(tmp_path / "single"), str(tmp_path / "multi")
  proc = run_module("tests._train_and_dump", f"--workdir={single}", "--steps=20", *MP_FLAGS)
  assert proc.returncode == 0, proc.stderr[-3000:]
  for steps in (10, 20):  # 30 steps in all, then 10 more
    proc = run_module("scripts.launch_local", "--num_processes=2", "--module=tests._train_and_dump",
                      "--", f"--workdir={multi}", f"--steps={steps}", *MP_FLAGS, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:]
  assert "[0]" in proc.stdout and "[1]" in proc.stdout
  assert "Resumed" in proc.stdout and "at step 30" in proc.stdout
  assert sorted(os.listdir(os.path.join(multi, "checkpoints"))) == ["20", "30", "40"]
  with open(os.path.join(multi, "summary.json")) as f:
    assert json.load(f)["final"]["eval/modes_captured"] >= 0
  p0, p1, ref = _params(multi, 0), _params(multi, 1), _params(single, 0)
  assert p0.keys() == p1.keys() == ref.keys()
  for k in ref:
    np.testing.assert_array_equal(p0[k], p1[k])
    np.testing.assert_allclose(p0[k], ref[k], atol=1e-5)
  assert not np.allclose(p0[k], 0)


def test_many_steps_between_host_syncs_do_not_deadlock(tmp_path):
  """XLA:CPU collectives over forced devices hung once tens of steps were queued; the loop keeps
  at most a few in flight whatever --log_every is."""
  proc = run_module("experiments.train", f"--workdir={tmp_path / 'w'}", "--dataset=grid",
                    "--strategy=gan", "--mlp_hidden=16", "--steps=400", "--log_every=400",
                    "--sample_every=400", "--checkpoint_every=400", "--eval_every=0",
                    env=cpu_devices(2), timeout=240)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "on 2 device(s)" in proc.stderr
  assert os.path.exists(tmp_path / "w" / "summary.json")
