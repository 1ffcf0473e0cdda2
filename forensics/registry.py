"""The one registry helper: name -> entry tables for detectors, generator families, dataset adapters and
benchmark suite kinds (timm's `_registry.py` shape: registering records a name and nothing else).

Entries register themselves where they are defined (a decorator or a call at module level), so adding a
family, an adapter or a suite kind never means editing a central list. Built-in entries may be *lazy*: the
registry knows the module that registers a name and imports it on first lookup, so `forensics --help` or
`forensics bench list` does not load torch models it will not use. The module path is the only place a
built-in is named; nothing else imports the family, which keeps the harness and the benchmarks free of
family names.
"""
from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind by name.

    kind: what an entry is, for messages ("detector", "generator family", ...).
    builtins: name -> module that registers that name when imported (lazy built-ins).
    error: the exception class for an unknown name (a ValueError subclass with a one-line message).
    """

    def __init__(self, kind: str, builtins: dict[str, str] | None = None,
                 error: type[ValueError] = ValueError) -> None:
        self.kind = kind
        self.error = error
        self._builtins = dict(builtins or {})
        self._entries: dict[str, T] = {}

    # ------------------------------------------------------------------ registering
    def add(self, name: str, entry: T) -> T:
        """Record `entry` under `name`; the same definition twice (a module imported again) is harmless,
        another one under a taken name is an error."""
        known = self._entries.get(name)
        if known is not None and known is not entry and _identity(known) != _identity(entry):
            raise ValueError(f"{self.kind} {name!r} is already registered by {_identity(known)}")
        self._entries[name] = entry
        return entry

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator form of add(); without a name, the function's name with '_' spelled '-'."""
        def decorate(entry: T) -> T:
            self.add(name or entry.__name__.replace("_", "-"), entry)
            return entry
        return decorate

    def remove(self, name: str) -> None:
        """Forget `name` (tests that register a toy entry clean up after themselves)."""
        self._entries.pop(name, None)

    # ------------------------------------------------------------------ looking up
    def get(self, name: str) -> T:
        if name not in self._entries and name in self._builtins:
            importlib.import_module(self._builtins[name])
        if name not in self._entries:
            raise self.error(f"unknown {self.kind} {name!r} (known: {', '.join(self.names()) or 'none'})")
        return self._entries[name]

    def names(self) -> list[str]:
        """Every name, registered or built in (without importing anything)."""
        return sorted(set(self._entries) | set(self._builtins))

    def load_all(self) -> dict[str, T]:
        """name -> entry for every name, importing the built-ins not loaded yet."""
        return {name: self.get(name) for name in self.names()}

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._builtins

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _identity(entry: object) -> str:
    """Where an entry was defined: the same class or function re-imported has the same identity."""
    target = entry if callable(entry) and hasattr(entry, "__qualname__") else type(entry)
    name = getattr(entry, "name", None)
    return f"{target.__module__}.{target.__qualname__}" + (f"[{name}]" if name and not callable(entry) else "")
