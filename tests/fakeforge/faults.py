"""Injected failures: a share of calls answered 500 or 429, reproducibly."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Faults:
    """`rate` of accepted requests fail with one of `statuses`; `next_failures` fail first.

    `hold` seconds pass between a write taking effect and its answer: a client killed then has
    been heard but never hears back, which is the window restart tests need to hit often.
    The random generator is seeded so a failing test fails the same way again.
    """

    rate: float = 0.0
    statuses: tuple[int, ...] = (500, 429)
    retry_after: int = 1
    hold: float = 0.0
    next_failures: list[int] = field(default_factory=list)
    seed: int = 0
    injected: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # not for cryptography

    def fail_next(self, *statuses: int) -> None:
        self.next_failures.extend(statuses)

    def roll(self) -> int | None:
        """The status to fail this call with, or None to answer it."""
        if self.next_failures:
            self.injected += 1
            return self.next_failures.pop(0)
        if self.rate and self._random.random() < self.rate:
            self.injected += 1
            return self._random.choice(self.statuses)
        return None
