"""Honest progress for the log line: percent, elapsed, a smoothed rate, ETA per phase and total.

The first interval of a phase includes compiling its step (seconds on CPU, against milliseconds
per step after), so a rate taken from it, or from the last interval alone, swings by 2-5x from
one line to the next. Here each phase's rate leaves out its first interval (once a second one
exists) and is smoothed over the following ones; phases not started yet are estimated at the
current phase's rate.
"""

import time
from typing import Callable, Optional, Sequence

_SMOOTHING = 0.3  # weight of the newest interval in the running rate


def format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
  """`update(step, phase)` after each logged interval; `line(step, phase)` for the log."""

  def __init__(self, phases: Sequence[tuple[str, int, int]], start_step: int,
               clock: Callable[[], float] = time.perf_counter):
    """phases: (name, first step, end step) in order; start_step: where this process began."""
    self._phases = list(phases)
    self._clock = clock
    self._began = clock()
    self._last_time, self._last_step = self._began, start_step
    self._intervals: dict[str, int] = {}
    self._rates: dict[str, float] = {}
    self.last_rate = 0.0  # the latest interval's raw rate (metrics.jsonl's steps_per_sec)

  def update(self, step: int, phase: str) -> None:
    now = self._clock()
    self.last_rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_time, self._last_step = now, step
    seen = self._intervals.get(phase, 0)
    self._intervals[phase] = seen + 1
    if seen <= 1 or phase not in self._rates:  # the first interval (compilation) is replaced
      self._rates[phase] = self.last_rate
    else:
      self._rates[phase] += _SMOOTHING * (self.last_rate - self._rates[phase])

  def rate(self, phase: str) -> Optional[float]:
    return self._rates.get(phase)

  def remaining(self, step: int, phase: str) -> dict[str, float]:
    """Seconds left per phase from `step` (the current one and those after it)."""
    current = self._rates.get(phase) or 0.0
    out = {}
    for name, begin, end in self._phases:
      left = end - max(begin, step)
      if left <= 0:
        continue
      rate = self._rates.get(name) or current
      out[name] = left / max(rate, 1e-9)
    return out

  def line(self, step: int, phase: str) -> str:
    total = self._phases[-1][2]
    left = self.remaining(step, phase)
    parts = [f"{100.0 * step / max(total, 1):.0f}%",
             f"{self._rates.get(phase, 0.0):.1f} steps/s",
             f"elapsed {format_duration(self._clock() - self._began)}"]
    if len(left) > 1:
      parts.append("ETA " + ", ".join(f"{n} {format_duration(s)}" for n, s in left.items())
                   + f", total {format_duration(sum(left.values()))}")
    else:
      parts.append(f"ETA {format_duration(sum(left.values()))}")
    return " | ".join(parts)
