"""Where a run's numbers and pictures go: metrics.jsonl, TensorBoard event files, PNG grids.

Only these functions touch the workdir's logs, so a multi-host run can give them to process 0
alone. TensorBoard files come from tensorboardX, which writes them without TensorFlow.
"""

import json
import math
import os
from typing import Any

import numpy as np
from PIL import Image


def image_grid(images: np.ndarray, rows: int | None = None) -> np.ndarray:
  """[N, H, W, C] floats in [0, 1] -> one uint8 [rows*(H+1)+1, cols*(W+1)+1, C] picture."""
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  n, h, w, c = images.shape
  rows = rows or int(math.ceil(math.sqrt(n)))
  cols = int(math.ceil(n / rows))
  grid = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1, c), np.float32) * 0.5
  for i in range(n):
    r, q = divmod(i, cols)
    grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + q * (w + 1):1 + q * (w + 1) + w] = images[i]
  return (grid * 255 + 0.5).astype(np.uint8)


def save_png(path: str, picture: np.ndarray, scale: int = 2, caption: str = "") -> None:
  """The grid enlarged `scale` times, with `caption` (one line or several) in a band above."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  img = Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture)
  if scale > 1:
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
  if caption:
    from PIL import ImageDraw
    lines = caption.splitlines()
    band = 4 + 13 * len(lines)
    framed = Image.new(img.mode, (img.width, img.height + band), "white")
    framed.paste(img, (0, band))
    draw = ImageDraw.Draw(framed)
    for i, line in enumerate(lines):
      draw.text((4, 2 + 13 * i), line, fill="black")
    img = framed
  img.save(path)


SCATTER_SAMPLES = 2500  # the VEEGAN protocol's sample count, so the picture shows what is scored


def scatter_png(path: str, samples: np.ndarray, real: np.ndarray, title: str = "",
                means: np.ndarray | None = None) -> np.ndarray:
  """2-D samples over real data (and mode means); saves a PNG and returns it as [H, W, 3]."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
  ax.scatter(real[:2500, 0], real[:2500, 1], s=2, c="#bbbbbb", label="data")
  ax.scatter(samples[:, 0], samples[:, 1], s=2, c="#d62728", label="generated")
  if means is not None:
    ax.scatter(means[:, 0], means[:, 1], s=30, marker="x", c="k", label="mode means")
  lim = 1.3 * max(float(np.abs(real).max()), 1e-3)
  ax.set_xlim(-lim, lim)
  ax.set_ylim(-lim, lim)
  ax.set_aspect("equal")
  ax.legend(loc="upper right", fontsize=7)
  if title:
    ax.set_title(title, fontsize=10, wrap=True)  # the score line fits the 5-inch figure
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return np.asarray(Image.open(path).convert("RGB"))


# Panels of the curves figure: (title, y label, which quantities, log scale). A quantity goes
# in the first panel that claims it (by its name after the phase); the rest get a panel each.
_PANELS = (
    ("Adversarial losses", "loss", lambda n: n in ("d_loss", "g_loss", "e_loss"), False),
    ("D's mean output on real and generated data", "mean D(x)",
     lambda n: n in ("d_real", "d_fake"), False),
    ("Gradient norms", "global L2 norm (log scale)", lambda n: n.endswith("grad_norm"), True),
    ("Reconstruction error", "MSE per value",
     lambda n: n in ("recon_mse", "heldout_recon_mse"), False),
    ("FID", "FID", lambda n: n.startswith("fid"), False),
    ("KID (bars: std over subsets)", "KID (unscaled MMD^2)",
     lambda n: n.startswith("kid") and not n.endswith("_std"), False),
    ("Precision, recall, density, coverage", "fraction",
     lambda n: n.split("_")[0] in ("precision", "recall", "density", "coverage"), False),
    ("Class shares of the samples", "share of samples",
     lambda n: n in ("min_class_share", "max_class_share"), False),
)


def plot_curves(metrics_path: str, out_path: str) -> list[str]:
  """Training curves from metrics.jsonl against step, related quantities on shared axes
  (D and G losses, D on real and fake, every gradient norm, ...); returns the panel titles."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  series: dict[str, tuple[list, list]] = {}
  with open(metrics_path) as f:
    for line in f:
      if not line.strip():
        continue
      record = json.loads(line)
      for k, v in record.items():
        if k in ("step", "phase", "steps_per_sec") or not isinstance(v, (int, float)):
          continue
        xs, ys = series.setdefault(f"{record['phase']}/{k}", ([], []))
        xs.append(record["step"])
        ys.append(v)
  # recon_loss is recon_mse under --recon_loss=mse: one line, not two.
  for key in [k for k in series if k.endswith("/recon_loss")]:
    twin = key.replace("/recon_loss", "/recon_mse")
    if twin in series and series[twin] == series[key]:
      del series[key]
  panels: list[tuple[str, str, list[str], bool]] = []
  left = sorted(series)
  for title, ylabel, claims, log in _PANELS:
    mine = [k for k in left if claims(k.split("/", 1)[1])]
    if mine:
      panels.append((title, ylabel, mine, log))
      left = [k for k in left if k not in mine and k[:-len("_std")] not in mine]
  panels += [(k, k.split("/", 1)[1], [k], False) for k in left]
  if not panels:
    return []
  cols = min(3, len(panels))
  rows = int(math.ceil(len(panels) / cols))
  fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows), dpi=100,
                           squeeze=False)
  last = max(max(xs) for xs, _ in series.values())
  for ax, (title, ylabel, keys, log) in zip(axes.flat, panels):
    for key in keys:
      xs, ys = series[key]
      std = series.get(key + "_std", (None, None))[1]
      ax.errorbar(xs, ys, yerr=std, marker="o" if len(xs) < 20 else None, markersize=4,
                  capsize=3, label=key)
    ax.set_xlim(0, last * 1.03)  # every panel on the run's whole step axis
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("training step", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    if log:
      ax.set_yscale("log")
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if len(keys) > 1:
      ax.legend(fontsize=8)
  for ax in list(axes.flat)[len(panels):]:
    ax.axis("off")
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  fig.savefig(out_path)
  plt.close(fig)
  return [p[0] for p in panels]


class MetricWriter:
  """Appends to workdir/metrics.jsonl and to TensorBoard under workdir/tensorboard."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb_dir = os.path.join(workdir, "tensorboard")
    self._tb = None  # opened at the first write: a run refused at start-up leaves no file
    self._purge_step = None

  @property
  def tb(self):
    if self._tb is None:
      from tensorboardX import SummaryWriter
      # purge_step: TensorBoard hides the earlier event files' points from this step on, so
      # a resumed run's curves continue instead of doubling back.
      self._tb = SummaryWriter(self._tb_dir, purge_step=self._purge_step)
    return self._tb

  def truncate_after(self, step: int) -> None:
    """Drops what was logged after `step` (-1: everything, a fresh start in an old workdir):
    a resumed run logs those steps again, and each step is to appear once."""
    self._purge_step = step + 1 if os.path.isdir(self._tb_dir) else None
    if not (self.enabled and os.path.exists(self.path)):
      return
    with open(self.path) as f:
      keep = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with open(self.path, "w") as f:
      f.writelines(keep)

  def write(self, step: int, phase: str, scalars: dict[str, Any]) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), "phase": phase,
              **{k: _json_number(v) for k, v in scalars.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    for k, v in scalars.items():
      self.tb.add_scalar(f"{phase}/{k}", float(v), int(step))

  def write_config(self, step: int, config: dict[str, Any]) -> None:
    """The run's configuration as text in TensorBoard (its TEXT tab), once per start."""
    if self.enabled:
      self.tb.add_text("config", "```\n" + json.dumps(config, indent=1, sort_keys=True)
                       + "\n```", int(step))

  def write_hparams(self, step: int, config: dict[str, Any], metrics: dict[str, Any]) -> None:
    """The configuration as hyperparameters and the final metrics beside them (HPARAMS tab),
    so runs of a sweep can be compared in one table."""
    if not self.enabled:
      return
    hparams = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
               for k, v in config.items()}
    finals = {f"final/{k}": float(v) for k, v in metrics.items()
              if isinstance(v, (int, float)) and math.isfinite(v)}
    self.tb.add_hparams(hparams, finals, name="hparams", global_step=int(step))

  def write_image(self, step: int, tag: str, picture: np.ndarray) -> None:
    if self.enabled:
      self.tb.add_image(tag, picture, int(step), dataformats="HWC")

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def write_summary(workdir: str, step: int, evaluation: dict | None = None) -> dict[str, Any]:
  """workdir/summary.json: the last logged value of every quantity, written when a run finishes.

  Its presence marks a finished run (scripts.sweep skips those); 'final' maps 'phase/name' to
  the quantity's last value in metrics.jsonl (losses, eval metrics, steps_per_sec);
  'evaluation' is the final evaluation with its protocol (class counts, sample sizes, ...).
  """
  final: dict[str, Any] = {}
  path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        if line.strip():
          record = json.loads(line)
          for k, v in record.items():
            if k not in ("step", "phase"):
              final[f"{record['phase']}/{k}"] = v
  summary = {"step": int(step), "final": final}
  out = os.path.join(workdir, "summary.json")
  if evaluation is None and os.path.exists(out):  # a finished run reopened: keep its evaluation
    with open(out) as f:
      previous = json.load(f)
    if previous.get("step") == int(step) and "evaluation" in previous:
      evaluation = previous["evaluation"]
  if evaluation:
    summary["evaluation"] = evaluation
  with open(out, "w") as f:
    json.dump(summary, f, indent=1, sort_keys=True,
              default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
  return summary


def _json_number(v: Any) -> Any:
  v = float(v)
  return v if math.isfinite(v) else str(v)  # JSON has no NaN/inf
