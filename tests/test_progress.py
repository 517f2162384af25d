"""The log line's rate leaves out compilation (ETAs per phase add up to the total); the
curves figure puts related quantities on shared, labelled axes; TensorBoard gets the config."""

import os

from aegan_jax.progress import Progress, format_duration


class FakeClock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_rate_leaves_out_the_compiling_interval_and_eta_covers_later_phases():
  clock = FakeClock()
  p = Progress([("pretrain", 0, 1000), ("gan", 1000, 3000)], start_step=0, clock=clock)
  clock.now = 10.0                 # 100 steps, 9 s of it compiling
  p.update(100, "pretrain")
  assert p.last_rate == 10.0
  clock.now = 11.0                 # then 100 steps/s
  p.update(200, "pretrain")
  assert p.rate("pretrain") == 100.0  # the first interval is forgotten, not averaged in
  clock.now = 12.0
  p.update(300, "pretrain")
  assert p.rate("pretrain") == 100.0
  left = p.remaining(300, "pretrain")
  assert left == {"pretrain": 7.0, "gan": 20.0}  # gan not started: estimated at the current rate
  line = p.line(300, "pretrain")
  assert line.startswith("10% | 100.0 steps/s | elapsed 0m12s")
  assert line.endswith("ETA pretrain 0m07s, gan 0m20s, total 0m27s")

  clock.now = 30.0                 # the gan phase compiles too
  p.update(1100, "gan")
  clock.now = 32.0
  p.update(1300, "gan")
  assert p.rate("gan") == 100.0 and p.remaining(1300, "gan") == {"gan": 17.0}
  assert p.line(1300, "gan").endswith("| ETA 0m17s")


def test_format_duration():
  assert format_duration(59.9) == "0m59s" and format_duration(3725) == "1h02m05s"


def test_curves_share_axes_by_meaning(tmp_path):
  import json
  from aegan_jax import writers
  rows = [{"step": s, "phase": "pretrain", "recon_loss": 1.0 / s, "recon_mse": 1.0 / s}
          for s in (10, 20)]
  rows += [{"step": s, "phase": "gan", "d_loss": 1.3, "g_loss": 0.7, "d_real": 0.6,
            "d_fake": 0.4, "d_grad_norm": 1.0, "g_grad_norm": 2.0, "k": 0.01} for s in (30, 40)]
  rows += [{"step": 40, "phase": "eval", "fid_lenet": 40.0, "kid_lenet": 30.0,
            "kid_lenet_std": 5.0, "recall_lenet": 0.6}]
  path = tmp_path / "metrics.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  panels = writers.plot_curves(str(path), str(tmp_path / "curves.png"))
  assert panels == ["Adversarial losses", "D's mean output on real and generated data",
                    "Gradient norms", "Reconstruction error", "FID",
                    "KID (bars: std over subsets)", "Precision, recall, density, coverage",
                    "gan/k"]  # recon_loss = recon_mse drawn once; kid's std as its error bars
  assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_grids_carry_their_caption(tmp_path):
  import numpy as np
  from PIL import Image
  from aegan_jax import writers
  picture = writers.image_grid(np.zeros((4, 8, 8, 1)), rows=2)
  writers.save_png(str(tmp_path / "plain.png"), picture)
  writers.save_png(str(tmp_path / "captioned.png"), picture, caption="step 5: 4 samples\nline 2")
  plain = np.asarray(Image.open(tmp_path / "plain.png"))
  captioned = np.asarray(Image.open(tmp_path / "captioned.png"))
  band = captioned.shape[0] - plain.shape[0]
  assert band == 4 + 13 * 2 and captioned.shape[1] == plain.shape[1]
  np.testing.assert_array_equal(captioned[band:], plain)  # the grid itself is untouched
  assert (captioned[:band] < 128).sum() > 50  # text was drawn in the band


def _events(directory):
  """Every Event in the TensorBoard files under `directory` (TFRecord framing, no TensorFlow)."""
  import struct
  from tensorboardX.proto import event_pb2
  out = []
  for root, _, names in os.walk(directory):
    for name in names:
      if "tfevents" not in name:
        continue
      with open(os.path.join(root, name), "rb") as f:
        blob = f.read()
      i = 0
      while i < len(blob):
        (length,) = struct.unpack("<Q", blob[i:i + 8])
        event = event_pb2.Event()
        event.ParseFromString(blob[i + 12:i + 12 + length])
        out.append((os.path.relpath(root, directory), event))
        i += 12 + length + 4
  return out


def test_tensorboard_gets_the_config_and_final_metrics_as_hparams(tiny, tmp_path):
  from aegan_jax import train
  train.train_and_evaluate(tiny(), str(tmp_path))
  events = _events(str(tmp_path / "tensorboard"))
  tags = {v.tag for _, e in events for v in e.summary.value}
  assert any(t.startswith("config") for t in tags)
  hparams = [e for where, e in events if where == "hparams"]
  plugin = {v.metadata.plugin_data.plugin_name for e in hparams for v in e.summary.value}
  assert "hparams" in plugin
  finals = {v.tag for e in hparams for v in e.summary.value if v.tag.startswith("final/")}
  assert "final/gan/g_loss" in finals and "final/pretrain/recon_mse" in finals
