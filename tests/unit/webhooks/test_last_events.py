"""Writing Repositories' last events: never on the delivery's path, never raising, the last
event of each Repository written, failures counted."""

from __future__ import annotations

import asyncio
import threading

from ci.kube.repositories import Repository, SecretKeys
from ci.kube.repository_status import MESSAGE_LIMIT, LastEvent
from webhooks.last_events import LastEvents


def repository(name: str) -> Repository:
    return Repository(namespace="team", name=name, uid=f"uid-{name}", forge="github",
                      url=f"https://github.com/acme/{name}", secret=SecretKeys(name="forge"))


def event(delivery_id: str) -> LastEvent:
    return LastEvent(delivery_id=delivery_id, kind="push", outcome="created",
                     time="2024-05-01T10:00:00Z")


def test_record_returns_at_once_and_only_each_repositorys_last_event_is_written() -> None:
    release = threading.Event()
    written: list[tuple[str, str]] = []
    counted: list[str] = []

    def write(target: Repository, last: LastEvent) -> None:
        release.wait(timeout=10)  # an API server that takes its time
        written.append((target.name, last.delivery_id))

    async def scenario() -> None:
        last_events = LastEvents(write, count=counted.append)
        last_events.record(repository("shop"), event("d-1"))
        await asyncio.sleep(0.05)  # d-1 is being written, and blocks
        for delivery in ("d-2", "d-3", "d-4"):
            last_events.record(repository("shop"), event(delivery))
        last_events.record(repository("cart"), event("d-5"))
        assert last_events.busy
        release.set()
        while last_events.busy:
            await asyncio.sleep(0.01)
        await last_events.close()

    asyncio.run(scenario())
    assert written == [("shop", "d-1"), ("shop", "d-4"), ("cart", "d-5")]
    assert counted == ["written"] * 3


def test_a_failed_write_is_counted_and_the_next_one_still_made() -> None:
    counted: list[str] = []
    written: list[str] = []

    def write(target: Repository, last: LastEvent) -> None:
        if last.delivery_id == "d-1":
            raise OSError("connection refused")
        written.append(last.delivery_id)

    async def scenario() -> None:
        last_events = LastEvents(write, count=counted.append)
        last_events.record(repository("shop"), event("d-1"))
        while last_events.busy:
            await asyncio.sleep(0.01)
        last_events.record(repository("shop"), event("d-2"))
        await last_events.close()

    asyncio.run(scenario())
    assert counted == ["failed", "written"] and written == ["d-2"]


def test_the_status_patch_replaces_the_runs_and_bounds_the_message() -> None:
    long = LastEvent(delivery_id="d", kind="push", outcome="invalid-spec", time="t",
                     message="x" * (MESSAGE_LIMIT * 2))
    status = long.as_status()["lastEvent"]
    assert len(status["message"]) == MESSAGE_LIMIT and status["message"].endswith("...")
    assert status["pipelineRuns"] == []  # present, so a merge patch clears the last runs
