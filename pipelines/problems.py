"""Problems found in a spec, each pinned to `file:line:column`.

The linter collects every problem instead of stopping at the first; warnings never block a run.
`SpecError` is the only exception the spec layer raises for bad input.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple

from msgspec import Struct


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Position(NamedTuple):
    """A place in a file. `line` and `column` are 1-based, as editors count them.

    A named tuple, not a dataclass: the parser makes one for every YAML node, and
    `tuple.__new__(Position, (file, line, column))` is a single C call (a frozen dataclass
    costs a Python call and a descriptor call per field, 2.5 times as long).
    """

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Problem(Struct, frozen=True, kw_only=True):
    """One thing wrong (or suspicious) in a spec.

    `path` is the dotted field path (`jobs.test.steps[0].run`) for tools; `position` is for
    people. `hint` is an optional suggestion, e.g. "did you mean `steps`?".
    """

    severity: Severity
    message: str
    position: Position
    path: str = ""
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.position}: {self.severity}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class SpecError(Exception):
    """A spec that cannot be used: carries every problem found, errors first, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(
            sorted(problems, key=lambda p: (p.severity != Severity.ERROR, p.position))
        )
        first = self.problems[0] if self.problems else None
        super().__init__(str(first) if first else "invalid spec")

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == Severity.ERROR)
