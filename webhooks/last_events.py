"""Writing each Repository's `status.lastEvent` off the deliveries' path.

A delivery's answer never waits for this write, and never fails because of it: `record`
only notes the event, and one background task writes what was noted, on a thread of its own
so the writes never take the worker threads that deliveries create runs with. Events for a
Repository that arrive while a write is under way replace each other (only the last one is
the last event), so a burst of pushes costs a few writes, and what is waiting is bounded by
the number of Repositories.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import structlog

from ci.forges.deliveries import Comment, Delivery, Ping, PullRequestClosed, Rerun
from ci.kube.repositories import Repository
from ci.kube.repository_status import LastEvent
from pipelines.events import Event, EventKind
from webhooks.answers import Answer

log = structlog.get_logger(__name__)

Write = Callable[[Repository, LastEvent], None]  # blocking; raises on failure
Count = Callable[[str], None]  # called with "written" or "failed" after each write

# Seconds the server's shutdown waits for the writes still waiting.
CLOSE_SECONDS = 5.0


class LastEvents:
    """Call order: `record` from the event loop, any number of times; `await close()` once."""

    def __init__(self, write: Write, *, count: Count | None = None) -> None:
        self._write = write
        self._count = count or (lambda result: None)
        self._waiting: dict[str, tuple[Repository, LastEvent]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferry-last-event")

    @property
    def busy(self) -> bool:
        """Whether a noted event is still unwritten (tests wait on this)."""
        return bool(self._waiting) or (self._writer is not None and not self._writer.done())

    def record(self, repository: Repository, event: LastEvent) -> None:
        self._waiting[repository.key] = (repository, event)
        if self._writer is None or self._writer.done():
            # A fresh context: the delivery that starts the writer has its delivery id bound
            # for logging, which must not label the writes of other Repositories' events.
            self._writer = asyncio.create_task(
                self._write_waiting(), name="ferry-last-events", context=contextvars.Context()
            )

    async def close(self) -> None:
        if self._writer is not None:
            done, _ = await asyncio.wait({self._writer}, timeout=CLOSE_SECONDS)
            if not done:
                log.warning("Repository statuses left unwritten at shutdown",
                            repositories=sorted(self._waiting))
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def _write_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            key = next(iter(self._waiting))
            repository, event = self._waiting.pop(key)
            try:
                await loop.run_in_executor(self._thread, self._write, repository, event)
            except Exception as error:  # best effort: logged and counted, never raised
                log.warning("could not write the Repository's status.lastEvent",
                            repository=key, delivery_id=event.delivery_id, error=str(error))
                self._count("failed")
            else:
                self._count("written")


def delivery_event(delivery: Delivery, answer: Answer | None, *, outcome: str = "error"
                   ) -> LastEvent:
    """What the Repository's status shows of a verified delivery: its kind, commit and
    outcome (`outcome` when there is no answer: an error, a timeout)."""
    kind, event = _what_happened(delivery)
    body = answer.body if answer is not None else {}
    message = body.get("skipped") or body.get("error") or body.get("trust") or ""
    return LastEvent(
        delivery_id=delivery.delivery_id,
        kind=kind,
        outcome=answer.outcome if answer is not None else outcome,
        time=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ref=event.ref if event else "",
        sha=event.sha if event else "",
        message=str(message),
        pipeline_runs=tuple(body.get("pipelineRuns") or ()),
    )


def _what_happened(delivery: Delivery) -> tuple[str, Event | None]:
    """A forge-neutral kind, and the commit it is about, if any. Ignored deliveries keep the
    forge's own event name, which says what was ignored."""
    parsed = delivery.parsed
    if isinstance(parsed, Event):
        return parsed.kind.value, parsed
    if isinstance(parsed, Comment):
        return EventKind.COMMENT.value, parsed.pull_request
    if isinstance(parsed, PullRequestClosed):
        return EventKind.PULL_REQUEST.value, None
    if isinstance(parsed, Rerun):
        return "rerun", None
    if isinstance(parsed, Ping):
        return "ping", None
    return delivery.event_name, None
