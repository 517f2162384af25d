"""Process-level settings of the host that make CPU training faster; entry points call them.

XLA:CPU allocates each execution's buffers with the C library's malloc and frees them at its
end. glibc serves allocations of 128 KB and more with fresh mmap'ed pages and returns them at
free, so every training step of the dcgan networks at batch 64 faulted in ~8,500 new pages
(33 MB, zeroed by the kernel) before computing anything: ~15% of the step on 2 cores
(docs/performance.md). `keep_freed_memory` makes malloc serve them from its heap and keep what
is freed, so the next step reuses warm pages. The cost is that the process keeps its peak
memory for its lifetime, which is what a training process does anyway.

Larger steps need two more settings. glibc serves a thread's allocations from 64 MB heaps and
maps anything larger afresh whatever mallopt says; at batch 256 XLA asked for its step's
temporaries as one 120 MB block (30,000 page faults, ~10% of the reference step).
`xla_compiler_options` asks XLA for them in heaps of at most 32 MB, and a 128 MB top pad keeps
glibc from unmapping a thread heap whose blocks are all free: it does so regardless of the trim
threshold unless the pad exceeds the room left in the heap before it plus the freed one's tail,
at most two heaps. The pad is address space only: pages are touched when used. Now and then a
thread moves to another malloc arena and faults once more until that arena's heaps have grown.
AEGAN_JAX_KEEP_FREED_MEMORY=0 in the environment turns it off (for a measurement, or a process
that must give memory back).

Standard library only: the PyTorch side of scripts.benchmark imports it without JAX.
"""

import ctypes
import ctypes.util
import os
import resource
import sys

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_THREAD_HEAP = 64 << 20  # glibc's HEAP_MAX_SIZE on 64-bit
KEEPING_FREED_MEMORY = False  # whether keep_freed_memory took effect in this process


def keep_freed_memory() -> bool:
  """Asks glibc's malloc to keep freed memory for reuse; True if it took effect.

  A no-op (False) where the C library is not glibc. Call it before JAX allocates much: it
  changes how later allocations are served. Allocations larger than a thread heap (64 MB) are
  still mapped afresh: jit with `xla_compiler_options` so that XLA asks for none.
  """
  if not sys.platform.startswith("linux") or os.environ.get(
      "AEGAN_JAX_KEEP_FREED_MEMORY", "1") == "0":
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = libc.mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  global KEEPING_FREED_MEMORY
  KEEPING_FREED_MEMORY = all(mallopt(param, value) for param, value in (
      (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 2 * _THREAD_HEAP)))
  return KEEPING_FREED_MEMORY


def xla_compiler_options(backend: str) -> dict[str, int]:
  """Options for jax.jit(compiler_options=...) of a large step: on CPU, while glibc keeps freed
  memory, the step's temporaries in blocks that fit a thread heap (so they are kept too).
  Buffer placement only: the computation and its numbers are unchanged."""
  if backend != "cpu" or not KEEPING_FREED_MEMORY:
    return {}
  return {"xla_multiheap_size_constraint_per_heap": _THREAD_HEAP // 2}


def peak_rss() -> int:
  """This process's peak resident memory in bytes. VmHWM, unlike ru_maxrss, starts afresh at
  exec, so a child process does not report its parent's peak."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KB on Linux
