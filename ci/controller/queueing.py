"""One worker per key: a key's items are handled in order, different keys in parallel.

At most `workers` handlers run at once. A handler that asks to be retried parks its key
(without holding a worker) and is called again after the delay with the newest item only:
by then, the oldest state is not worth reporting any more.

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
    def __init__(self, handler: Handler[K, I], *, workers: int) -> None:
        self._handler = handler
        self._slots = asyncio.Semaphore(workers)
        self._pending: dict[K, collections.deque[I]] = {}
        self._tasks: dict[K, asyncio.Task[None]] = {}
        self._closed = False

    @property
    def depth(self) -> int:
        """Keys with work waiting, running or parked for a retry."""
        return len(self._tasks)

    def submit(self, key: K, item: I) -> None:
        if self._closed:
            return
        self._pending.setdefault(key, collections.deque()).append(item)
        if key not in self._tasks:
            self._tasks[key] = asyncio.get_running_loop().create_task(
                self._drain(key), name=f"worker {key}"
            )

    async def idle(self) -> None:
        """Wait until nothing is queued, running or parked (for tests and benches)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain(self, key: K) -> None:
        attempt = 0
        try:
            while True:
                items = self._pending.get(key)
                if not items:
                    return
                item = items.popleft()
                async with self._slots:
                    retry = await self._handle(key, item, attempt)
                if retry is None:
                    attempt = 0
                    continue
                attempt += 1
                # Keep only the newest item: it is what a retry should report.
                newest = items[-1] if items else item
                items.clear()
                items.append(newest)
                await asyncio.sleep(retry.delay)
        finally:
            self._tasks.pop(key, None)
            if not self._pending.get(key):
                self._pending.pop(key, None)
            elif not self._closed:  # submitted while finishing: start again
                self._tasks[key] = asyncio.get_running_loop().create_task(self._drain(key))

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
