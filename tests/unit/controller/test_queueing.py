"""The keyed queue under a relist's burst: bounded workers, order per key, retries parked."""

from __future__ import annotations

import asyncio

from ci.controller.queueing import KeyedQueue
from ci.controller.retrying import Retry


def test_a_burst_of_keys_is_handled_by_at_most_workers_tasks() -> None:
    handled: list[int] = []
    running = [0, 0]  # now, most at once

    async def handle(key: int, item: str, attempt: int) -> Retry | None:
        running[0] += 1
        running[1] = max(running)
        await asyncio.sleep(0)
        running[0] -= 1
        handled.append(key)
        return None

    async def scenario() -> int:
        queue: KeyedQueue[int, str] = KeyedQueue(handle, workers=4)
        for key in range(2000):
            queue.submit(key, "listed")
        tasks = len(asyncio.all_tasks())
        assert queue.depth == 2000
        await asyncio.wait_for(queue.idle(), 10)
        assert queue.depth == 0
        await queue.close()
        return tasks

    tasks = asyncio.run(scenario())
    assert sorted(handled) == list(range(2000))
    assert handled[:4] == [0, 1, 2, 3]  # in the order they came
    assert running[1] == 4
    assert tasks <= 1 + 4  # the scenario and the workers, not one task per key


def test_a_parked_key_holds_no_worker_and_gets_its_newest_item() -> None:
    handled: list[tuple[str, int, int]] = []

    async def handle(key: str, item: int, attempt: int) -> Retry | None:
        handled.append((key, item, attempt))
        if key == "slow" and attempt < 2:
            return Retry(0.05)
        return None

    async def scenario() -> None:
        queue: KeyedQueue[str, int] = KeyedQueue(handle, workers=1)
        queue.submit("slow", 1)
        await asyncio.sleep(0.01)  # parked now
        queue.submit("slow", 2)
        queue.submit("slow", 3)
        queue.submit("other", 1)
        await asyncio.sleep(0.01)
        assert ("other", 1, 0) in handled  # the only worker was free for it
        await asyncio.wait_for(queue.idle(), 5)
        await queue.close()

    asyncio.run(scenario())
    assert [entry for entry in handled if entry[0] == "slow"] == [
        ("slow", 1, 0), ("slow", 1, 1), ("slow", 3, 2)]


def test_a_key_submitted_while_it_is_handled_is_handled_again_after() -> None:
    order: list[int] = []

    async def handle(key: str, item: int, attempt: int) -> Retry | None:
        order.append(item)
        if item == 1:
            queue.submit("a", 2)
            await asyncio.sleep(0.01)
        return None

    async def scenario() -> None:
        nonlocal queue
        queue = KeyedQueue(handle, workers=8)
        queue.submit("a", 1)
        await asyncio.wait_for(queue.idle(), 5)
        await queue.close()

    queue: KeyedQueue[str, int]
    asyncio.run(scenario())
    assert order == [1, 2]


def test_newest_only_items_waiting_for_a_key_become_one() -> None:
    passes: list[int] = []

    async def handle(key: str, item: int, attempt: int) -> Retry | None:
        passes.append(item)
        await asyncio.sleep(0.01)
        return None

    async def scenario() -> None:
        queue: KeyedQueue[str, int] = KeyedQueue(handle, workers=2)
        queue.submit("prune", 0, newest_only=True)
        await asyncio.sleep(0)  # the first pass runs
        for item in range(1, 1000):
            queue.submit("prune", item, newest_only=True)
        await asyncio.wait_for(queue.idle(), 5)
        await queue.close()

    asyncio.run(scenario())
    assert passes == [0, 999]  # one pass running, one more for everything after it began
