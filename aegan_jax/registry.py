"""Name -> object tables, so a new idea is one new module plus one registry line."""

from typing import Callable, Generic, Iterator, TypeVar

from aegan_jax.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
  """A dict with a kind name, whose failed lookups list the valid names."""

  def __init__(self, kind: str, flag: str):
    self.kind = kind
    self.flag = flag
    self._entries: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    def add(obj: T) -> T:
      if name in self._entries:
        raise ValueError(f"{self.kind} {name!r} registered twice")
      self._entries[name] = obj
      return obj
    return add

  def get(self, name: str) -> T:
    if name not in self._entries:
      raise UserError(
          f"unknown {self.kind} {name!r} for --{self.flag}; "
          f"choose one of: {', '.join(self.names())}")
    return self._entries[name]

  def names(self) -> list[str]:
    return sorted(self._entries)

  def items(self) -> list[tuple[str, T]]:
    """(name, entry) pairs in the order they were registered."""
    return list(self._entries.items())

  def __iter__(self) -> Iterator[str]:
    return iter(self.names())
