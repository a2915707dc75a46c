"""The spec's and the plan's records: frozen `msgspec.Struct`s, some compared without a field.

The records the compiler and `ferry run` make are `msgspec.Struct`s rather than dataclasses:
a Struct class is built in C at import (0.02 ms, where `@dataclass` compiles its generated
methods from source at every import, 0.8 ms a class: `ferry run` loads 40 of them), and an
instance is made in C, about ten times sooner than by a frozen dataclass's `__init__`, which
sets each field through `object.__setattr__` (165 ns against 1.7 us for a planned step).

A Struct compares, hashes and shows all of its fields. Records that carry where they came
from in the spec's text (a `Position`) or an index derived from their other fields are equal
whatever those fields hold, as `dataclasses.field(compare=False, repr=False)` made them:
they derive from `ComparedWithout` and name the fields in `__left_out__`.
"""

from __future__ import annotations

from typing import ClassVar

from msgspec import Struct

_COMPARED: dict[type, tuple[str, ...]] = {}


def _compared(cls: type[ComparedWithout]) -> tuple[str, ...]:
    names = _COMPARED.get(cls)
    if names is None:
        names = _COMPARED[cls] = tuple(
            name for name in cls.__struct_fields__ if name not in cls.__left_out__
        )
    return names


class ComparedWithout(Struct, frozen=True):
    """A record whose fields named in `__left_out__` take no part in `==`, `hash()` or
    `repr()`."""

    __left_out__: ClassVar[frozenset[str]] = frozenset()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            getattr(self, name) == getattr(other, name) for name in _compared(type(self))
        )

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in _compared(type(self))))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _compared(type(self)))
        return f"{type(self).__name__}({shown})"

