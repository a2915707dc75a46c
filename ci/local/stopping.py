"""`Stop`: the one signal that stops a local run, safe to set from anywhere.

A run's jobs run in threads; what waits (the scheduler for its jobs, a step for its process)
waits on a `queue.SimpleQueue` of its own, and a `Stop` puts a wake-up into each one that
listens. `SimpleQueue.put` is reentrant, so `set` holds no lock and may be called from a
signal handler (Ctrl-C in `ferry run`), from the server's event loop (a newer push, a
cancel button) or from another thread, as often as it likes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Wake = Callable[[], None]


class Stop:
    """Set once, never cleared; `listening(wake)` calls `wake` when it is set (at once if it
    already is). A wake may be called more than once and must not block."""

    __slots__ = ("_set", "_wakes")

    def __init__(self) -> None:
        self._set = False
        self._wakes: list[Wake] = []

    def set(self) -> None:
        self._set = True
        for wake in tuple(self._wakes):
            wake()

    def is_set(self) -> bool:
        return self._set

    @contextmanager
    def listening(self, wake: Wake) -> Iterator[None]:
        # Registered before the flag is read: a `set` in between calls `wake` once more,
        # never not at all.
        self._wakes.append(wake)
        try:
            if self._set:
                wake()
            yield
        finally:
            self._wakes.remove(wake)
