"""Answers to deliveries already handled, so a redelivery is answered without any work.

Only completed handling is remembered: a delivery that failed (503, a forge error) must be
redone when the forge redelivers it. The idempotent PipelineRun name is what makes a second
run impossible; this memory only spares the forge and API calls, per process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from ci.forges.types import DeliveryId

T = TypeVar("T")


class DeliveryMemory(Generic[T]):
    """At most `size` answers, each for `ttl` seconds; the oldest go first."""

    def __init__(
        self, *, size: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._size = size
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: OrderedDict[DeliveryId, tuple[float, T]] = OrderedDict()

    def recall(self, delivery_id: DeliveryId) -> T | None:
        with self._lock:
            entry = self._answers.get(delivery_id)
            if entry is None:
                return None
            stored, answer = entry
            if self._clock() - stored > self._ttl:
                del self._answers[delivery_id]
                return None
            return answer

    def remember(self, delivery_id: DeliveryId, answer: T) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._answers[delivery_id] = (self._clock(), answer)
            self._answers.move_to_end(delivery_id)
            while len(self._answers) > self._size:
                self._answers.popitem(last=False)
