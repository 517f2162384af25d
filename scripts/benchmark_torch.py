"""The benchmark's workloads written in PyTorch (eager), for a side-by-side ratio.

  python -m scripts.benchmark_torch --workload=reference --batch_size=64

Run by `scripts.benchmark --torch` in a child process (so the two frameworks never share a
process or its thread pools); prints one JSON line in the format of scripts/benchmark.py.
PyTorch is an optional benchmark extra (pip install -e '.[bench]'), never a dependency of the
library.

The networks mirror scripts/benchmark.py's WORKLOADS:
  reference: the DCGAN of the performance issue (G: z 64 -> Linear 7*7*128 no bias -> BN -> ReLU
    -> ConvT 64, 4x4 s2, no bias -> BN -> ReLU -> ConvT 1, 4x4 s2 -> tanh; D: Conv 64, 4x4 s2
    -> LReLU 0.2 -> Conv 128, 4x4 s2 -> LReLU 0.2 -> Linear 1), Adam 2e-4, b1 0.5, non-saturating.
  dcgan: the same networks behind the AE-GAN generator's code mapping (Linear 64 -> 64), with a
    sigmoid output (aegan_jax's images are in [0, 1]); Adam 1e-4, b1 0.5, non-saturating.
  mlp: the seed's networks (G: Linear 64 -> 64 mapping -> Linear 128 ReLU -> Linear 784 ->
    sigmoid; D: Linear 128 ReLU -> Linear 1), Adam 1e-4, b1 0.9, the min-max loss.
One step: one D update on a real batch and a batch of fakes, then one G update on those fakes
through the updated D, as aegan_jax's gan_step does.
"""

import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

from aegan_jax.cpu import allocator  # stdlib only: no JAX in this process


class _DCGANGenerator(nn.Module):
  def __init__(self, mapping: bool, output):
    super().__init__()
    self.mapping = nn.Linear(64, 64) if mapping else nn.Identity()
    self.fc = nn.Linear(64, 7 * 7 * 128, bias=False)
    self.bn1 = nn.BatchNorm1d(7 * 7 * 128)
    self.up1 = nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(64)
    self.up2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)
    self.output = output

  def forward(self, z):
    x = F.relu(self.bn1(self.fc(self.mapping(z)))).view(-1, 128, 7, 7)
    x = F.relu(self.bn2(self.up1(x)))
    return self.output(self.up2(x))


class _DCGANDiscriminator(nn.Module):
  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(1, 64, 4, 2, 1)
    self.conv2 = nn.Conv2d(64, 128, 4, 2, 1)
    self.fc = nn.Linear(7 * 7 * 128, 1)

  def forward(self, x):
    x = F.leaky_relu(self.conv1(x), 0.2)
    x = F.leaky_relu(self.conv2(x), 0.2)
    return self.fc(x.flatten(1))[:, 0]


def _mlp_networks():
  g = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784),
                    nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))
  d = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 1),
                    nn.Flatten(0))
  return g, d


def build(workload: str):
  """(G, D, lr, b1, loss) for a workload name."""
  if workload == "reference":
    return _DCGANGenerator(False, torch.tanh), _DCGANDiscriminator(), 2e-4, 0.5, "non_saturating"
  if workload == "dcgan":
    return _DCGANGenerator(True, torch.sigmoid), _DCGANDiscriminator(), 1e-4, 0.5, "non_saturating"
  if workload == "mlp":
    return (*_mlp_networks(), 1e-4, 0.9, "minimax")
  raise SystemExit(f"error: unknown --workload {workload!r}; choose reference, dcgan or mlp")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workload", default="reference")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--windows", type=int, default=5)
  parser.add_argument("--window_seconds", type=float, default=2.0)
  parser.add_argument("--warmup_s", type=float, default=2.0)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--keep_freed_memory", action="store_true",
                      help="glibc keeps freed memory, as in aegan_jax's entry points")
  parser.add_argument("--serve", action="store_true",
                      help="after warm-up, print a line and time one window per 'window S' "
                           "line on stdin, until 'done' (how scripts.benchmark takes turns)")
  args = parser.parse_args()
  kept = allocator.keep_freed_memory() if args.keep_freed_memory else False

  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  g, d, lr, b1, loss = build(args.workload)
  g, d = g.to(device), d.to(device)
  opt_g = torch.optim.Adam(g.parameters(), lr, betas=(b1, 0.999))
  opt_d = torch.optim.Adam(d.parameters(), lr, betas=(b1, 0.999))
  b = args.batch_size
  real = torch.rand(b, 1, 28, 28, device=device)
  ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)
  bce = F.binary_cross_entropy_with_logits
  autocast = torch.autocast(device.type, torch.bfloat16, enabled=args.dtype == "bfloat16")

  def step():
    with autocast:
      fake = g(torch.randn(b, 64, device=device))
      opt_d.zero_grad(set_to_none=True)
      d_loss = bce(d(real), ones) + bce(d(fake.detach()), zeros)
    d_loss.backward()
    opt_d.step()
    with autocast:
      opt_g.zero_grad(set_to_none=True)
      logits = d(fake)
      g_loss = bce(logits, ones) if loss == "non_saturating" else -bce(logits, zeros)
    g_loss.backward()
    opt_g.step()

  sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

  def run(seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
      step()
      n += 1
      if device.type != "cuda" or n % 10 == 0:
        sync()
    sync()
    return n / (time.perf_counter() - start)

  start = time.perf_counter()
  step()
  sync()
  first = time.perf_counter() - start
  run(args.warmup_s)
  rates = []
  if args.serve:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
      if line.strip() == "done":
        break
      rates.append(run(float(line.split()[1])))
      print(json.dumps({"steps_per_sec": rates[-1]}), flush=True)
  else:
    rates = [run(args.window_seconds) for _ in range(args.windows)]
  rate = statistics.median(rates)
  peak = (torch.cuda.max_memory_allocated() if device.type == "cuda" else allocator.peak_rss())
  print(json.dumps({
      "framework": f"torch {torch.__version__} eager", "workload": args.workload,
      "batch_size": b, "dtype": args.dtype,
      "device_kind": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
      "device_count": 1, "threads": torch.get_num_threads(), "keeps_freed_memory": kept,
      "compile_s": round(first, 3), "steps_per_sec": round(rate, 3),
      "images_per_sec": round(rate * b, 1), "window_steps_per_sec": [round(r, 3) for r in rates],
      "peak_memory_bytes": peak,
      "peak_memory_kind": "device" if device.type == "cuda" else "host_peak_rss"}), flush=True)


if __name__ == "__main__":
  main()
