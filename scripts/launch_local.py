"""Start N processes of a multi-process run on this machine: JAX's distributed runtime on
127.0.0.1, for testing multi-host code and for users without a cluster manager.

  python -m scripts.launch_local --num_processes=2 -- --workdir=runs/mp --steps=1000

runs `python -m experiments.train --coordinator_address=127.0.0.1:PORT --num_processes=2
--process_id=i <flags>` for i = 0..N-1 (CPU collectives: gloo). Each line of output is prefixed
with its process id. If one process fails the others are stopped; SIGINT/SIGTERM are passed to
all of them (so they save a checkpoint and exit together). The exit status is the first
non-zero one. On a cluster, start the same command once per host instead (SLURM and Cloud TPU
are detected by jax.distributed without flags).
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import flags

from aegan_jax import cli

flags.DEFINE_integer("num_processes", 2, "Processes to start.")
flags.DEFINE_string("module", "experiments.train", "Module each process runs (python -m).")
flags.DEFINE_integer("devices_per_process", 0, "Forced CPU devices per process "
                     "(--xla_force_host_platform_device_count); 0 = leave XLA_FLAGS as they are.")
flags.DEFINE_integer("port", 0, "Coordinator port on 127.0.0.1; 0 = a free one.")


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def commands(module: str, num_processes: int, port: int, args: list[str]) -> list[list[str]]:
  return [[sys.executable, "-m", module, f"--coordinator_address=127.0.0.1:{port}",
           f"--num_processes={num_processes}", f"--process_id={i}", *args]
          for i in range(num_processes)]


def _forward(stream, prefix: str, out) -> None:
  for line in iter(stream.readline, ""):
    out.write(f"{prefix}{line}")
    out.flush()


def launch(module: str, num_processes: int, args: list[str], port: int = 0,
           devices_per_process: int = 0) -> int:
  """Runs the processes to completion; returns the exit status (0 if all succeeded)."""
  env = dict(os.environ)
  env.setdefault("JAX_PLATFORMS", "cpu")
  if devices_per_process:
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count="
                        f"{devices_per_process}").strip()
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  procs = [subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
           for cmd in commands(module, num_processes, port or free_port(), args)]
  threads = [threading.Thread(target=_forward, args=(p.stdout, f"[{i}] ", sys.stdout), daemon=True)
             for i, p in enumerate(procs)]
  for t in threads:
    t.start()

  def relay(signum, frame):
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)
  previous = {s: signal.signal(s, relay) for s in (signal.SIGINT, signal.SIGTERM)}
  status = 0
  try:
    while any(p.poll() is None for p in procs):
      failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
      if failed and not status:
        status = failed[0]  # one failed: the others would wait for it in a collective forever
        for p in procs:
          if p.poll() is None:
            p.terminate()
      time.sleep(0.2)
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
  for t in threads:
    t.join(timeout=5)
  return status or next((p.returncode for p in procs if p.returncode), 0)


def main(argv):
  if flags.FLAGS.num_processes < 1:
    raise cli.UserError(f"--num_processes must be >= 1, got {flags.FLAGS.num_processes}")
  sys.exit(launch(flags.FLAGS.module, flags.FLAGS.num_processes, argv[1:], flags.FLAGS.port,
                  flags.FLAGS.devices_per_process))


if __name__ == "__main__":
  cli.run(main)
