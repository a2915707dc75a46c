"""What the receiver answers a delivery with, in the words the forge's delivery log shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    status_code: int
    body: Mapping[str, Any]
    outcome: str  # the metrics label: created, existing, skipped, ignored, ping, ...
    runs_created: int = 0


def skipped(reason: str, *, outcome: str) -> Answer:
    """202 with why nothing ran: the delivery was handled."""
    return Answer(status_code=202, body={"skipped": reason}, outcome=outcome)
