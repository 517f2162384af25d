"""A strategy's own hyperparameters, declared in its module, with defaults, help and bounds.

A strategy module lists them in `HYPERPARAMETERS`, {flag name: Hyperparameter}. config.Config
gains one field per entry (so one flag, one key of config.json, one value a population may
vary when it is a float), owned by that strategy: the other strategies refuse it when it is
set, and config.validate holds it to its bounds, before anything is loaded. Flag names carry
the strategy's name (`mdgan_lambda1`), so two strategies' flags never collide.
"""

import dataclasses
import math
from typing import Any, Optional

from aegan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
  """A flag of one strategy. Bounds are inclusive (`minimum`, `maximum`) or exclusive
  (`above`); `auto` is a value outside them that means "the strategy decides" (e.g. -1)."""
  default: Any
  help: str
  minimum: Optional[float] = None
  above: Optional[float] = None
  maximum: Optional[float] = None
  auto: Any = None
  hint: str = ""  # said after the bounds in the refusal, e.g. "(BEGAN uses 0.5 to 0.75)"

  def field(self, owner: str) -> dataclasses.Field:
    return dataclasses.field(default=self.default, metadata={"help": self.help, "strategy": owner})

  def check(self, name: str, value: Any) -> None:
    """Refuses, in one line, a value outside the bounds."""
    if isinstance(value, (bool, str)) or (self.auto is not None and value == self.auto):
      return
    inside = (math.isfinite(value)
              and (self.minimum is None or value >= self.minimum)
              and (self.above is None or value > self.above)
              and (self.maximum is None or value <= self.maximum))
    if not inside:
      raise UserError(f"--{name} must be {self.bounds()}{' ' + self.hint if self.hint else ''}, "
                      f"got {value}")

  def bounds(self) -> str:
    integer = isinstance(self.default, int)
    if integer and self.minimum == 1 and self.maximum is None:
      return "a positive integer"
    if self.maximum is not None:
      low = f"[{self.minimum}" if self.minimum is not None else f"({self.above}"
      return f"in {low}, {self.maximum}]"
    low = f">= {self.minimum}" if self.minimum is not None else f"> {self.above}"
    return f"{low}" if integer else f"a finite number {low}"


def declared(strategies) -> dict[str, tuple[str, Hyperparameter]]:
  """{flag name: (owning strategy, its Hyperparameter)} over a strategy registry, in
  registration order; a name declared twice is a programming error."""
  out: dict[str, tuple[str, Hyperparameter]] = {}
  for owner, module in strategies.items():
    for name, hp in getattr(module, "HYPERPARAMETERS", {}).items():
      if name in out:
        raise ValueError(f"hyperparameter {name} is declared by {out[name][0]} and {owner}")
      out[name] = (owner, hp)
  return out
