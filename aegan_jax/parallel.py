"""Devices and processes: the data-parallel mesh, global arrays and multi-host start-up.

Data parallelism here is sharding, the modern equivalent of `pmap` (which current JAX keeps in
maintenance mode): a 1-D mesh of every device with one axis, 'data'. The state and the
(MNIST-size) training set are replicated on every device; inside the jitted step the global
batch is gathered with its rows sharded along 'data', so each device gathers and processes only
its own rows, and XLA inserts the gradient all-reduce. The strategies' steps are unchanged: they
are written for one global batch, and means over the batch (losses, BatchNorm statistics) are
means over the global batch whatever the device count.

Multi-host is the same program on every process after `jax.distributed.initialize`: every
process holds the same replicated state and computes its own devices' share of each batch.
"""

import dataclasses
import os
from typing import Any, Optional, Sequence

from absl import flags
from absl import logging
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from aegan_jax.errors import UserError

DATA_AXIS = "data"


def define_flags() -> None:
  """The multi-host flags of an entry point (not Config fields: they describe the cluster, not
  the experiment, so a run resumes under any process layout)."""
  flags.DEFINE_string("coordinator_address", "", "host:port of process 0 for a multi-process "
                      "run (jax.distributed); '' = single process, or what SLURM/TPU provide.")
  flags.DEFINE_integer("num_processes", 1, "Processes in a multi-process run.")
  flags.DEFINE_integer("process_id", 0, "This process's index in [0, num_processes).")


def _cluster_environment() -> bool:
  """Whether a cluster manager that jax.distributed detects by itself launched us as one of
  several processes (SLURM, Open MPI, Cloud TPU pods)."""
  env = os.environ
  return (int(env.get("SLURM_NTASKS", "1") or 1) > 1
          or int(env.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1
          or "," in env.get("TPU_WORKER_HOSTNAMES", ""))


def initialize(coordinator_address: str = "", num_processes: int = 1,
               process_id: int = 0) -> None:
  """Starts JAX's distributed runtime when the flags or the environment ask for it.

  Must run before anything touches a JAX backend. On CPU the cross-process collectives are
  gloo's (what `scripts.launch_local` relies on).
  """
  explicit = bool(coordinator_address) or num_processes > 1
  if not explicit and not _cluster_environment():
    return
  if explicit:
    if num_processes < 1:
      raise UserError(f"--num_processes must be >= 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
      raise UserError(f"--process_id={process_id} is outside [0, {num_processes}); give each "
                      f"process a distinct id below --num_processes")
    if not coordinator_address:
      raise UserError(f"--num_processes={num_processes} needs --coordinator_address=host:port "
                      f"of process 0 (or use scripts.launch_local to start them)")
  # Only CPU collectives read this option; accelerators keep their own (NCCL, ICI).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if explicit:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  else:
    jax.distributed.initialize()
  if jax.process_index() > 0:
    logging.set_verbosity(logging.WARNING)  # process 0 reports progress for all of them


def initialize_from_flags() -> None:
  f = flags.FLAGS
  initialize(f.coordinator_address, f.num_processes, f.process_id)


def is_chief() -> bool:
  """Process 0 alone writes logs, metrics and pictures (checkpoints are written by all)."""
  return jax.process_index() == 0


@dataclasses.dataclass(frozen=True)
class DataParallel:
  """A 1-D device mesh over which batches are split and everything else is replicated."""
  mesh: Mesh

  @classmethod
  def create(cls, devices: Optional[Sequence[jax.Device]] = None) -> "DataParallel":
    """Over `devices` (default: every device of every process)."""
    devices = list(jax.devices() if devices is None else devices)
    # Auto axes: the steps are written for one global batch and XLA propagates the batch
    # sharding through them (with explicit axes every op would have to say how it is sharded).
    mesh = jax.make_mesh((len(devices),), (DATA_AXIS,),
                         axis_types=(jax.sharding.AxisType.Auto,), devices=devices)
    return cls(mesh)

  @property
  def num_devices(self) -> int:
    return self.mesh.size

  @property
  def replicated(self) -> NamedSharding:
    return NamedSharding(self.mesh, PartitionSpec())

  @property
  def batch(self) -> NamedSharding:
    """Leading (example) axis split along 'data'."""
    return NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))

  def check_batch_size(self, batch_size: int, flag: str = "--batch_size") -> None:
    n = self.num_devices
    if batch_size % n:
      raise UserError(
          f"{flag}={batch_size} does not split evenly over {n} devices; use a multiple of {n} "
          f"(e.g. {max(n, batch_size // n * n)} or {(batch_size // n + 1) * n}); it is the "
          f"global batch")

  def spreads(self, population: int) -> bool:
    """Whether a population of this size is split over the devices, population/n whole members
    each (no communication at all), rather than each member's batch. One process only: spread
    members would not be addressable by the other processes' host-side code."""
    return (population > 1 and self.num_devices > 1 and population % self.num_devices == 0
            and jax.process_count() == 1)

  def shard_batch(self, tree: Any) -> Any:
    """Inside jit: split each leaf's leading axis over the devices."""
    return jax.lax.with_sharding_constraint(tree, self.batch)

  def replicate(self, tree: Any) -> Any:
    """Every leaf as a global array replicated over the mesh.

    Each process passes its own copy (all equal: same seed, same data); in a multi-process run
    the global array is assembled with `jax.make_array_from_process_local_data`, so no process
    reads another's memory. Leaves already replicated on this mesh are kept as they are.
    """
    def put(x):
      if isinstance(x, jax.Array) and x.sharding == self.replicated:
        return x
      if jax.process_count() == 1:
        return jax.device_put(x, self.replicated)
      return jax.make_array_from_process_local_data(self.replicated, np.asarray(x))
    return jax.tree.map(put, tree)

  def abstract(self, tree: Any) -> Any:
    """Shapes and dtypes of `tree` with the replicated sharding, the target of a restore."""
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.replicated), tree)


def any_process(flag: bool) -> bool:
  """Whether `flag` is set on any process (a collective: every process must call it)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(np.any(multihost_utils.process_allgather(np.asarray([flag]))))
