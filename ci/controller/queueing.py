"""A queue per key: a key's items are handled in order, different keys in parallel.

At most `workers` handlers run at once, each key by one of them at a time. A handler that
asks to be retried parks its key (without holding a worker) and is called again after the
delay with the newest item only: by then, the oldest state is not worth reporting any more.

Everything here runs on the event loop; other threads submit with
`loop.call_soon_threadsafe(queue.submit, key, item)`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import structlog

from ci.controller.retrying import Retry

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 (the conventional name for an item type)

# (key, item, attempt) -> None when done, or a Retry. `attempt` counts retries since the
# key's last success, so backoff grows only while failures last.
Handler = Callable[[K, I, int], Awaitable[Retry | None]]
# Delay after a handler raised (a bug, or the API server failing): retried, not dropped.
UNEXPECTED_ERROR_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)


class KeyedQueue(Generic[K, I]):
    """`workers` tasks at most, started as work comes, take keys in the order they became
    ready: a relist of ten thousand runs queues ten thousand keys, not ten thousand tasks
    (each a coroutine with its frames, all alive until the last run was looked at)."""

    def __init__(self, handler: Handler[K, I], *, workers: int) -> None:
        self._handler = handler
        self._workers = max(1, workers)
        self._pending: dict[K, collections.deque[I]] = {}
        self._ready: collections.deque[K] = collections.deque()  # have items, not busy
        self._busy: set[K] = set()  # being handled, or parked until a retry's delay is over
        self._attempts: dict[K, int] = {}  # retries since the key's last success
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting = 0  # workers with nothing to do
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._closed = False

    @property
    def depth(self) -> int:
        """Keys with work waiting, running or parked for a retry."""
        return len(self._pending.keys() | self._busy)

    def submit(self, key: K, item: I, *, newest_only: bool = False) -> None:
        """`newest_only`: an item still waiting for this key is replaced, not followed (a
        pass over all runs, such as pruning, done once for many submits)."""
        if self._closed:
            return
        items = self._pending.get(key)
        if items is None:
            items = self._pending[key] = collections.deque()
            if key not in self._busy:
                self._ready.append(key)
        if newest_only:
            items.clear()
        items.append(item)
        self._wake.set()
        if self._waiting == 0 and len(self._tasks) < self._workers:
            task = asyncio.get_running_loop().create_task(self._work(), name="queue worker")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until nothing is queued, running or parked (for tests and benches)."""
        while not self._closed and (self._pending or self._busy):
            self._idle.clear()
            await self._idle.wait()

    async def close(self) -> None:
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._idle.set()

    async def _work(self) -> None:
        while not self._closed:
            if not self._ready:
                self._wake.clear()
                self._waiting += 1
                try:
                    await self._wake.wait()
                finally:
                    self._waiting -= 1
                continue
            key = self._ready.popleft()
            items = self._pending[key]
            item = items.popleft()
            self._busy.add(key)
            try:
                retry = await self._handle(key, item, self._attempts.get(key, 0))
            finally:
                self._busy.discard(key)
            if retry is None:
                self._attempts.pop(key, None)
                self._requeue(key)
                continue
            self._attempts[key] = self._attempts.get(key, 0) + 1
            # Keep only the newest item: it is what a retry should report.
            newest = items[-1] if items else item
            items.clear()
            items.append(newest)
            self._busy.add(key)  # parked: no worker takes it before the delay is over
            self._timers[key] = asyncio.get_running_loop().call_later(
                retry.delay, self._unpark, key)

    def _unpark(self, key: K) -> None:
        self._timers.pop(key, None)
        self._busy.discard(key)
        if not self._closed:
            self._requeue(key)
            self._wake.set()

    def _requeue(self, key: K) -> None:
        """After one of a key's items: the key goes to the back of the line if it has more."""
        if self._pending.get(key):
            self._ready.append(key)
            return
        self._pending.pop(key, None)
        if not self._pending and not self._busy:
            self._idle.set()

    async def _handle(self, key: K, item: I, attempt: int) -> Retry | None:
        try:
            return await self._handler(key, item, attempt)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # keep the worker alive; the state is retried
            delay = UNEXPECTED_ERROR_DELAYS[min(attempt, len(UNEXPECTED_ERROR_DELAYS) - 1)]
            log.exception("handler failed; retrying", key=str(key), retry_in=delay,
                          error=repr(error)[:300])
            return Retry(delay)
