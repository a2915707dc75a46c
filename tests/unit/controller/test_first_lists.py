"""The controller's wait for its watches' first lists (`_FirstList`, `_wait_listed`): the
watcher's thread ends the wait on the loop, a stop ends it without a list, and a list that
never comes is given up on, not waited for forever."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from ci.controller.app import _FirstList, _wait_listed
from ci.kube.watching import WatchEvent

# A generous bound: the waits below end on an event, never on this; it only keeps a broken
# wake-up from hanging the suite.
HANG = 30.0


class Recorder:
    def __init__(self) -> None:
        self.lists: list[list[str]] = []

    def on_relist(self, objects: Sequence[str]) -> None:
        self.lists.append(list(objects))

    def on_event(self, event: WatchEvent[str]) -> None:
        raise AssertionError("no events here")


def test_a_list_handed_in_the_watchers_thread_ends_the_wait() -> None:
    async def main() -> tuple[list[list[str]], list[bool]]:
        loop = asyncio.get_running_loop()
        recorders = [Recorder(), Recorder()]
        consumers = [_FirstList(recorder, loop=loop) for recorder in recorders]
        stopping = asyncio.Event()
        waiting = asyncio.ensure_future(_wait_listed(consumers, stopping))
        await asyncio.sleep(0)
        for consumer, objects in zip(consumers, (["a"], ["b", "c"]), strict=True):
            thread = threading.Thread(target=consumer.on_relist, args=(objects,))
            thread.start()
            await asyncio.to_thread(thread.join)
        await asyncio.wait_for(waiting, HANG)
        return [r for recorder in recorders for r in recorder.lists], [
            consumer.listed.is_set() for consumer in consumers]

    lists, listed = asyncio.run(main())
    assert lists == [["a"], ["b", "c"]]
    assert listed == [True, True]


def test_the_wait_goes_on_while_a_list_is_missing() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        first, second = _FirstList(Recorder(), loop=loop), _FirstList(Recorder(), loop=loop)
        waiting = asyncio.ensure_future(_wait_listed([first, second], asyncio.Event()))
        first.on_relist([])
        await asyncio.sleep(0.05)
        still_waiting = not waiting.done()
        second.on_relist([])
        await asyncio.wait_for(waiting, HANG)
        return still_waiting

    assert asyncio.run(main())


def test_stopping_ends_the_wait_without_a_list() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        consumer = _FirstList(Recorder(), loop=loop)
        stopping = asyncio.Event()
        waiting = asyncio.ensure_future(_wait_listed([consumer], stopping))
        await asyncio.sleep(0)
        stopping.set()
        await asyncio.wait_for(waiting, HANG)
        return consumer.listed.is_set()

    assert asyncio.run(main()) is False


def test_a_late_list_is_given_up_on_and_the_rest_still_counted() -> None:
    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        late, listed = _FirstList(Recorder(), loop=loop), _FirstList(Recorder(), loop=loop)
        listed.on_relist([])
        await asyncio.wait_for(_wait_listed([late, listed], asyncio.Event(), timeout=0.1), HANG)
        return late.listed.is_set(), listed.listed.is_set()

    assert asyncio.run(main()) == (False, True)
