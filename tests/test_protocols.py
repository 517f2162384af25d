"""What the published 2-D protocols need, and the defects they exposed, each checked so that
the old behaviour fails: veegan's sampled data codes, bigan's stochastic encoder, AE
discriminators and aae codes no wider than the data, VAE-GAN's middle layer, PacGAN packing,
simultaneous updates, uniform noise, and the papers' network pieces."""

import glob
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aegan_jax import data, strategies
from aegan_jax.config import Config, validate
from aegan_jax.config import from_flagfile as config_from_flagfile
from aegan_jax.data import pipeline
from aegan_jax.errors import UserError
from aegan_jax.models import apply_model, init_model
from aegan_jax.models.dcgan import DCGANDiscriminator
from aegan_jax.models.mlp import Maxout, MLPDecoder, MLPDiscriminator
from aegan_jax.steps import pack_examples
from aegan_jax.strategies.veegan import data_codes
from tests.conftest import run_module


@pytest.fixture(scope="module")
def grid():
  return data.load("grid")


def _config(strategy, **kw):
  base = dict(dataset="grid", strategy=strategy, mlp_hidden=(16,), latent_dim=2, code_dim=1,
              steps=4, batch_size=32)
  return Config(**{**base, **kw})


def _step_once(config, grid, key=0, state=None):
  """One step of the config's last phase from its init (or from `state`, a state of the same
  layout: the init's compile is most of this): (strategy, state before, state after)."""
  strategy = strategies.build(config, grid.spec)
  state = jax.jit(strategy.init)(jax.random.key(key)) if state is None else state
  batch = pipeline.batch_at(grid.train, jax.random.key(7), jnp.int32(0),
                            config.samples_per_step)
  new, _ = jax.jit(strategy.phases[-1].step)(state, batch)
  return strategy, state, new


def _leaves(tree):
  return [np.asarray(v) for v in jax.tree.leaves(tree)]


def test_veegan_data_codes_are_sampled_around_the_reconstruction():
  """z~ ~ N(F(x), I): a new draw for every key, centred on F(x), with unit spread."""
  codes = jnp.tile(jnp.array([[3.0, -1.0]]), (20_000, 1))
  a, b = data_codes(codes, jax.random.key(0)), data_codes(codes, jax.random.key(1))
  assert not np.allclose(a, b)
  np.testing.assert_allclose(np.mean(a, axis=0), [3.0, -1.0], atol=0.03)
  np.testing.assert_allclose(np.std(a, axis=0), [1.0, 1.0], atol=0.03)


def test_bigan_encoder_is_stochastic(grid):
  strategy = strategies.build(_config("bigan"), grid.spec)
  nets = strategy.nets
  state = jax.jit(strategy.init)(jax.random.key(0))
  assert nets.encoder_noise_dim == 2
  x = grid.train["image"][:64]
  encode = lambda k: apply_model(nets.encoder, state.params["encoder"],
                                 state.batch_stats["encoder"], x,
                                 nets.encoder_noise(jax.random.key(k), 64), train=False)[0]
  assert not np.allclose(encode(0), encode(1))


@pytest.mark.parametrize("strategy", ["ebgan", "began"])
def test_autoencoder_discriminator_must_be_narrower_than_the_data(strategy, grid):
  with pytest.raises(UserError, match="--code_dim=1 or less"):
    strategies.build(_config(strategy, code_dim=2), grid.spec)
  strategies.build(_config(strategy, code_dim=1), grid.spec)


def test_aae_codes_no_wider_than_the_data(grid):
  with pytest.raises(UserError, match="--latent_dim=2 or less"):
    strategies.build(_config("aae", latent_dim=8), grid.spec)
  strategies.build(_config("aae", latent_dim=2), grid.spec)


def test_mlp_middle_features_are_the_middle_layer():
  d = MLPDiscriminator(hidden=(4, 6, 8))
  x = jnp.ones((3, 2))
  params, _ = init_model(d, jax.random.key(0), x)
  _, middle = d.apply({"params": params}, x, with_features="middle")
  _, last = d.apply({"params": params}, x, with_features=True)
  assert middle.shape == (3, 6) and last.shape == (3, 8)
  d2 = MLPDiscriminator(hidden=(4, 6))
  params2, _ = init_model(d2, jax.random.key(0), x)
  assert d2.apply({"params": params2}, x, with_features="middle")[1].shape == (3, 4)


def test_dcgan_middle_features_are_the_first_convolution():
  d = DCGANDiscriminator(channels=4)
  x = jnp.ones((2, 28, 28, 1))
  variables = d.init(jax.random.key(0), x)
  _, middle = d.apply(variables, x, with_features="middle")
  _, last = d.apply(variables, x, with_features=True)
  assert middle.shape == (2, 14 * 14 * 4)      # Conv_0: 4 channels at stride 2
  assert last.shape == (2, 7 * 7 * 8)          # Conv_1: 8 channels


def test_pack_examples_joins_consecutive_groups():
  x = jnp.arange(12.0).reshape(6, 2)
  packed = pack_examples(x, 3)
  np.testing.assert_array_equal(packed, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  images = jnp.arange(4 * 2 * 2 * 3.0).reshape(4, 2, 2, 3)
  packed = pack_examples(images, 2)
  assert packed.shape == (2, 2, 2, 6)
  np.testing.assert_array_equal(packed[1, 0, 1], jnp.concatenate([images[2, 0, 1],
                                                                  images[3, 0, 1]]))
  assert pack_examples(x, 1) is x


def test_packed_gan_draws_m_times_the_batch_and_d_reads_packs(grid):
  config = _config("gan", pack=4, batch_size=8)
  assert config.samples_per_step == 32
  strategy, state, new = _step_once(config, grid)
  kernel = state.params["discriminator"]["Dense_0"]["kernel"]
  assert kernel.shape == (4 * 2, 16)
  assert not np.allclose(kernel, new.params["discriminator"]["Dense_0"]["kernel"])


@pytest.mark.parametrize("pack", [2])  # 4: test_preset_trains[pacgan_grid]
def test_packed_gan_trains_on_the_grid(pack, tmp_path):
  from aegan_jax import train
  config = _config("gan", pack=pack, batch_size=64, steps=200, latent_dim=4, log_every=100,
                   eval_every=0, sample_every=200, checkpoint_every=200)
  train.train_and_evaluate(config, str(tmp_path))
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows if "d_loss" in r][-1] == 200
  assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows if "d_loss" in r)


def test_packed_mdgan_and_conv_discriminator(grid, tiny, mnist5k):
  """mdgan's D reads packs of data, fakes and reconstructions; a conv D reads m x the
  channels."""
  _, state, new = _step_once(_config("mdgan", pack=2, batch_size=8), grid)
  assert state.params["discriminator"]["Dense_0"]["kernel"].shape == (2 * 2, 16)
  config = tiny(strategy="gan", arch="dcgan", dcgan_channels=4, pack=2, batch_size=8)
  strategy, state, new = _step_once(config, mnist5k)
  kernel = state.params["discriminator"]["Conv_0"]["kernel"]
  assert kernel.shape[-2] == 2  # in-channels: two 1-channel digits per pack
  assert all(np.all(np.isfinite(v)) for v in _leaves(new.params))


@pytest.mark.parametrize("strategy", ["gan", "bigan", "veegan"])
def test_simultaneous_generator_plays_the_discriminator_before_its_update(strategy, grid):
  """Simultaneous: G's update cannot depend on D's learning rate (it plays the old D);
  alternating: it does (it plays the updated D)."""
  # The four runs start from one state: the learning rates and the update rule change only
  # the step, not the state's layout (Adam's moments).
  start = jax.jit(strategies.build(_config(strategy), grid.spec).init)(jax.random.key(0))

  def g_after(update, d_lr):
    config = _config(strategy, update=update, d_lr=d_lr)
    return _leaves(_step_once(config, grid, state=start)[2].params["generator"])

  same = lambda a, b: all(np.array_equal(u, v) for u, v in zip(a, b))
  assert same(g_after("simultaneous", 1e-4), g_after("simultaneous", 0.5))
  assert not same(g_after("alternating", 1e-4), g_after("alternating", 0.5))


def test_uniform_latents_fill_the_cube(grid):
  nets = strategies.build(_config("gan", latent_dist="uniform", latent_dim=3), grid.spec).nets
  z, _ = nets.latents(jax.random.key(0), 4096)
  assert z.shape == (4096, 3)
  assert float(z.min()) >= -1 and float(z.max()) <= 1
  assert float(z.min()) < -0.99 and float(z.max()) > 0.99


def test_leaky_relu_hidden_layers():
  d = MLPDiscriminator(hidden=(8,), activation="leaky_relu")
  x = -jnp.ones((1, 3))
  params, _ = init_model(d, jax.random.key(0), x)
  _, h = d.apply({"params": params}, x, with_features=True)
  pre = x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]
  np.testing.assert_allclose(h, jnp.where(pre > 0, pre, 0.2 * pre), rtol=1e-6)


def test_maxout_is_the_max_of_its_pieces():
  layer = Maxout(width=2, pieces=3)
  x = jnp.array([[1.0, -2.0]])
  params = layer.init(jax.random.key(0), x)["params"]
  affine = x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]
  np.testing.assert_allclose(layer.apply({"params": params}, x),
                             affine.reshape(1, 2, 3).max(axis=-1), rtol=1e-6)


def test_papers_network_pieces():
  """tanh hidden units, BatchNorm in the generator, orthogonal (gain 1.4) and N(0, 0.02)
  initializations, maxout D: the pieces the Unrolled GAN / GDPP and PacGAN / ALI code use."""
  z = jax.random.normal(jax.random.key(0), (64, 8))
  dec = MLPDecoder(hidden=(32, 32), out_shape=(2,), activation="tanh", batchnorm=True,
                   weight_init="orthogonal")
  params, stats = init_model(dec, jax.random.key(1), z)
  assert "BatchNorm_0" in stats and "bias" not in params["Dense_0"]
  w = np.asarray(params["Dense_1"]["kernel"])
  np.testing.assert_allclose(w.T @ w, 1.4 ** 2 * np.eye(32), atol=1e-4)
  _, new_stats = apply_model(dec, params, stats, z, train=True)
  assert not np.allclose(new_stats["BatchNorm_0"]["mean"], stats["BatchNorm_0"]["mean"])
  d = MLPDiscriminator(hidden=(200, 200), activation="maxout", maxout_pieces=5,
                       weight_init="normal")
  d_params, _ = init_model(d, jax.random.key(2), jnp.zeros((2, 2)))
  assert d_params["Maxout_0"]["Dense_0"]["kernel"].shape == (2, 1000)
  assert np.std(d_params["Maxout_1"]["Dense_0"]["kernel"]) == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("flag, value", [("d_activation", "maxout"), ("mlp_batchnorm", True),
                                         ("weight_init", "orthogonal"), ("d_hidden", (64,))])
def test_mlp_only_flags_are_refused_for_conv_nets(flag, value):
  with pytest.raises(UserError, match=f"--{flag}.*--arch=mlp"):
    validate(Config(arch="dcgan", **{flag: value}))


@pytest.mark.parametrize("flag, value", [("d_activation", "sigmoid"), ("update", "async"),
                                         ("latent_dist", "cauchy")])
def test_unknown_choices_are_refused(flag, value):
  with pytest.raises(UserError, match=f"unknown --{flag}"):
    validate(Config(**{flag: value}))


def test_refused_from_the_command_line_in_one_line_writing_nothing(tmp_path):
  """(aae's and --pack's refusals are the same path: strategies.build, before any write.)"""
  words = "--code_dim=1 or less"
  workdir = tmp_path / "run"
  proc = run_module("experiments.train", "--dataset=grid", "--strategy=ebgan", "--code_dim=2",
                    f"--workdir={workdir}")
  assert proc.returncode != 0 and "Traceback" not in proc.stderr
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and words in errors[0]
  assert not workdir.exists()


def test_chance_row_scores_a_uniform_cloud_and_marks_rows_near_it():
  """A uniform cloud over [-5, 5]^2 scores 16-23 grid modes at 1.3-2.2 % HQ (the protocol's
  known chance level); a row is 'at chance' below three times chance's % HQ."""
  from aegan_jax import evaluation
  from scripts.mode_tables import is_at_chance
  rows = evaluation.chance_modes("grid", [-5, -5], [5, 5], draws=5, seed=0)
  assert len(rows) == 5 and all(r["protocol"]["samples"] == 2500 for r in rows)
  assert 16 <= np.mean([r["modes_captured"] for r in rows]) <= 23
  assert 1.3 <= np.mean([r["high_quality_percent"] for r in rows]) <= 2.2
  assert not np.array_equal(rows[0]["counts"], rows[1]["counts"])  # independent draws
  hq = lambda v: [{"high_quality_percent": v}]
  assert is_at_chance(hq(5.0), hq(2.0)) and not is_at_chance(hq(7.0), hq(2.0))


def test_ebgan_margin_follows_the_datas_energy_scale(grid):
  """Auto: 10 (the paper's MNIST value) on images; on the grid the RMS norm of its points,
  sqrt(E ||x||^2) = sqrt(2 * 8) = 4 (coordinates uniform over -4, -2, 0, 2, 4), not 10."""
  from aegan_jax.strategies.ebgan import auto_margin
  assert grid.spec.rms_norm == pytest.approx(4.0, rel=0.02)
  assert auto_margin(_config("ebgan"), grid.spec) == grid.spec.rms_norm
  assert auto_margin(_config("ebgan"), data.Spec((28, 28, 1))) == 10.0
  assert auto_margin(_config("ebgan", ebgan_margin=2.5), grid.spec) == 2.5
  with pytest.raises(UserError, match="--ebgan_margin"):
    validate(_config("ebgan", ebgan_margin=-2.0))


def test_began_draws_uniform_noise_by_default(grid):
  """BEGAN's z ~ U[-1, 1] (Berthelot et al.); --latent_dist=normal overrides it, and the other
  strategies keep N(0, I)."""
  latents = lambda **kw: np.asarray(strategies.build(_config(**kw), grid.spec).nets.latents(
      jax.random.key(0), 4096)[0])
  z = latents(strategy="began")
  assert z.min() >= -1 and z.max() <= 1 and z.max() > 0.99
  assert np.abs(latents(strategy="began", latent_dist="normal")).max() > 2
  assert np.abs(latents(strategy="ebgan")).max() > 2


PRESETS = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                        "experiments", "presets", "protocols", "*.flags")))


def test_the_published_setups_are_presets():
  names = {os.path.basename(p) for p in PRESETS}
  assert {"unrolled_ring.flags", "unrolled_grid.flags", "veegan_ring.flags", "veegan_grid.flags",
          "pacgan_ring.flags", "pacgan_grid.flags", "stacked_mnist_veegan.flags"} <= names


# unrolled_grid trains 200 steps in test_reproduce_runs_a_cell_once_and_tables_mark...
@pytest.mark.parametrize("path", [p for p in PRESETS if not p.endswith("unrolled_grid.flags")],
                         ids=os.path.basename)
def test_preset_trains(path, data_dir, tmp_path):
  """Each preset as written (networks, optimizer, update rule), 50 steps (20 for the DCGAN
  nets, whose steps take 0.3 s each under the suite's unoptimized compile); its header holds
  the measured cost (scripts.benchmark_presets). PacGAN's grid packs 4 samples per D
  example, as its PacGAN4 row does."""
  from aegan_jax import train
  header = "".join(l for l in open(path) if l.startswith("#"))
  assert "ms/step" in header and "python -m experiments.train" in header
  pack = 4 if path.endswith("pacgan_grid.flags") else 1
  steps = 20 if "--arch=dcgan" in open(path).read().split() else 50
  config = config_from_flagfile(path, steps=steps, log_every=steps // 2, sample_every=steps,
                                checkpoint_every=steps, data_dir=data_dir, pack=pack)
  train.train_and_evaluate(config, str(tmp_path))
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  losses = [r for r in rows if "d_loss" in r]
  assert losses[-1]["step"] == steps
  assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in losses)


def _reproduce(tmp_path, cell: str, extra: str, budget_minutes: float):
  """scripts.reproduce on one cell with 2 seeds under tmp_path: (its args, the process)."""
  args = [f"--only={cell}", "--seeds=2", f"--root={tmp_path / 'runs'}",
          f"--out={tmp_path / 'cells'}", f"--extra={extra}", f"--budget_minutes={budget_minutes}"]
  proc = run_module("scripts.reproduce", *args, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return args, proc


def test_reproduce_runs_a_cell_once_and_tables_mark_the_rest_pending(tmp_path):
  cells, table = tmp_path / "cells", tmp_path / "modes.md"
  args, _ = _reproduce(tmp_path, "unrolled_grid_gan",
                       "steps=200,log_every=100,sample_every=200,checkpoint_every=200", 10)
  result = json.loads((cells / "unrolled_grid_gan.json").read_text())
  assert result["seeds"] == 2 and [f["step"] for f in result["final"]] == [200, 200]
  assert [r["step"] for r in result["curve"][0]] == [50, 100, 150, 200]
  assert result["config"]["update"] == "simultaneous" and result["wall_seconds"] > 0
  stamp = (cells / "unrolled_grid_gan.json").stat().st_mtime_ns
  again = run_module("scripts.reproduce", *args, timeout=600)
  assert again.returncode == 0 and (cells / "unrolled_grid_gan.json").stat().st_mtime_ns == stamp
  proc = run_module("scripts.tables", f"--cells={cells}", f"--table={table}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  text = table.read_text()
  row = next(l for l in text.splitlines()
             if l.startswith("| **gan** (ours)") and "| 2 | 200 |" in l)
  assert row.count("±") == 3
  assert "| **bigan** (ours) | pending |" in text and text.count("(chance)") == 6
  assert "| GAN (PacGAN Table 1) | published |" in text


def test_a_cell_the_budget_stops_leaves_its_curve_so_far(tmp_path):
  """The budget kills the cell's training mid-run: its curve so far is written as
  <cell>.partial.json (never as the finished cell), --list and the table say where it stopped."""
  cells, table = tmp_path / "cells", tmp_path / "modes.md"
  # 45 s: the shortest budget that still starts a cell (the driver wants 30 s left to start one).
  args, _ = _reproduce(tmp_path, "pacgan_grid_gan", "steps=1000000,log_every=50,eval_every=50,"
                       "checkpoint_every=50,sample_every=1000000", 0.75)
  assert not (cells / "pacgan_grid_gan.json").exists()
  result = json.loads((cells / "pacgan_grid_gan.partial.json").read_text())
  step = result["in_progress"]["step"]
  assert result["in_progress"]["of_steps"] == 1000000 and result["seeds"] == 2
  assert step > 0 and [r["step"] for r in result["curve"][0]][:step // 50] == list(
      range(50, step + 1, 50))
  assert all(f["step"] >= step for f in result["final"])
  listed = run_module("scripts.reproduce", *args, "--list")
  assert re.search(rf"^pacgan_grid_gan +stopped at step {step:,}$", listed.stdout, re.M)
  proc = run_module("scripts.tables", f"--cells={cells}", f"--table={table}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  text = table.read_text()
  assert f"*stopped at step {step:,} of 1,000,000*" in text
  assert "| **gan[pack=2]** (ours) | pending |" in text
