"""Admission order, pruning choice, retry delays, and the keyed queue's ordering."""

from __future__ import annotations

import asyncio

import pytest

from ci.controller.admission import to_admit
from ci.controller.pruning import to_prune
from ci.controller.queueing import KeyedQueue
from ci.controller.reporting import RUN_REPORT, Memory
from ci.controller.retrying import Retry, backoff_delay, retry_for
from ci.controller.runs import RunSnapshot
from ci.forges.errors import ForgeServerError, NotFoundError, RateLimitedError
from ci.forges.statuses import Conclusion
from ci.kube import labels
from tests.defaults import controller_defaults
from tests.unit.controller.builders import pipeline_run


def _run(name: str, *, created: str, pending: bool = False,
         condition: tuple[str, str] | None = None, limit: str | None = "2",
         reported: bool = False, completion: str | None = None,
         archived: bool = False) -> RunSnapshot:
    obj = pipeline_run(name=name, condition=condition, completion=completion,
                       spec_status=labels.PENDING if pending else None,
                       reported=Memory().with_acknowledged(
                           RUN_REPORT, Conclusion.SUCCESS, report_id=None).dumps()
                       if reported else None)
    obj["metadata"]["creationTimestamp"] = created
    obj["metadata"]["labels"][labels.CONCURRENCY_GROUP] = "main"
    if limit is not None:
        obj["metadata"]["annotations"][labels.CONCURRENCY_LIMIT] = limit
    if archived:
        obj["metadata"]["annotations"][labels.ARCHIVED] = '{"steps": 1}'
    return RunSnapshot.of(obj)


def test_admits_the_oldest_pending_runs_into_free_slots() -> None:
    runs = [
        _run("c", created="2024-01-01T00:00:03Z", pending=True),
        _run("a", created="2024-01-01T00:00:01Z", condition=("Unknown", "Running")),
        _run("d", created="2024-01-01T00:00:04Z", pending=True),
        _run("b", created="2024-01-01T00:00:02Z", pending=True),
        _run("done", created="2024-01-01T00:00:00Z", condition=("True", "Succeeded")),
    ]
    assert [run.name for run in to_admit(runs)] == ["b"]


def test_a_full_group_admits_nothing_and_a_missing_limit_means_one() -> None:
    running = _run("a", created="2024-01-01T00:00:01Z", condition=("Unknown", "Running"),
                   limit=None)
    waiting = _run("b", created="2024-01-01T00:00:02Z", pending=True, limit=None)
    assert to_admit([running, waiting]) == []
    assert [run.name for run in to_admit([waiting])] == ["b"]


def test_prunes_the_oldest_finished_runs_that_were_reported() -> None:
    runs = [
        _run(f"r{index}", created=f"2024-01-01T00:00:0{index}Z", condition=("True", "Succeeded"),
             completion=f"2024-01-01T00:01:0{index}Z", reported=index != 1)
        for index in range(5)
    ] + [_run("running", created="2024-01-01T00:00:00Z", condition=("Unknown", "Running"))]
    # Keep r4, r3; r1 is owed its final report, so it stays for now.
    assert [run.name for run in to_prune(runs, keep=2)] == ["r2", "r0"]


@pytest.mark.parametrize(
    ("error", "attempt", "delay"),
    [(ForgeServerError("500"), 0, 1.0), (ForgeServerError("500"), 9, 60.0),
     (RateLimitedError("429", retry_after=30.0), 0, 30.0),
     (RateLimitedError("429", retry_after=10_000.0), 0, 900.0),
     (ConnectionError("api server"), 2, 5.0)],
)
def test_temporary_failures_are_retried_honouring_the_forge(
    error: Exception, attempt: int, delay: float
) -> None:
    assert retry_for(error, attempt=attempt, settings=controller_defaults().retry) == Retry(delay)


def test_permanent_refusals_are_not_retried() -> None:
    assert retry_for(NotFoundError("404"), attempt=0, settings=controller_defaults().retry) is None
    assert backoff_delay((), 3) == 1.0


def test_queue_keeps_order_per_key_runs_keys_in_parallel_and_retries_newest() -> None:
    handled: list[tuple[str, int]] = []
    failures = {("a", 2): 1}
    both_started = asyncio.Event()
    started: set[str] = set()

    async def handle(key: str, item: int, attempt: int) -> Retry | None:
        started.add(key)
        if started >= {"a", "b"}:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 5)  # a and b at the same time
        if failures.get((key, item)):
            failures[(key, item)] -= 1
            return Retry(0.01)
        handled.append((key, item))
        return None

    async def scenario() -> None:
        queue: KeyedQueue[str, int] = KeyedQueue(handle, workers=2)
        for item in (1, 2, 3):
            queue.submit("a", item)
        queue.submit("b", 1)
        await asyncio.wait_for(queue.idle(), 5)
        await queue.close()

    asyncio.run(scenario())
    assert [item for key, item in handled if key == "a"] == [1, 3]  # 2 failed; 3 was newer
    assert ("b", 1) in handled


def test_with_an_archive_only_runs_whose_logs_are_archived_are_pruned() -> None:
    runs = [
        _run(f"r{index}", created=f"2024-01-01T00:00:0{index}Z", condition=("True", "Succeeded"),
             completion=f"2024-01-01T00:01:0{index}Z", reported=True, archived=index == 0)
        for index in range(3)
    ]
    assert [run.name for run in to_prune(runs, keep=0)] == ["r2", "r1", "r0"]
    # r1 and r2 still have pods whose logs are being archived.
    assert [run.name for run in to_prune(runs, keep=0, archiving=True)] == ["r0"]
