"""RunRequests into runs: scheduled and manual runs take the receiver's one path to a run.

A RunRequest (ci/kube/run_requests.py) names a Repository in its own namespace, a branch or a
commit, and who asked. The receiver watches them and hands each one, once, to
`handling.start_run`, the same function a push takes (spec at the commit, lint, plan,
PipelineRun), with the event `schedule` or `manual`, then writes the outcome to the
RunRequest's status. A branch (or, when the request names neither a branch nor a commit, the
repository's default branch) is resolved to its head commit on the forge when the request is
handled.

At most one run per RunRequest: the run's name is made of the RunRequest's uid, so handling
it twice (a relist, a second receiver replica) lands on the same PipelineRun, and both
replicas call the outcome "created": the one that found the run made by the other may be the
first to write it.
The outcome is written onto the version of the RunRequest that was seen without one, so the
first replica's outcome stays.
The run is trusted: whoever may create a RunRequest in the namespace may already start runs
there (docs/schedules.md says who that is). The status description on the commit says who
started it ("manual run by alice", "schedule nightly").
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from structlog.contextvars import bound_contextvars

from ci.forges.types import DeliveryId, RepositoryName
from ci.kube.repositories import Repository
from ci.kube.repository_status import LastEvent
from ci.kube.run_requests import Outcome, RunRequest
from ci.kube.watching import EventType, Object, WatchEvent
from pipelines.events import Event, EventKind
from webhooks.answers import Answer, answer_for_error
from webhooks.handling import start_run
from webhooks.receiver import Receiver, Target
from webhooks.trust import Decision, Trust

log = structlog.get_logger(__name__)

# Seconds between attempts at a request that failed for a temporary reason (the forge or
# the API server down); the last repeats.
RETRY_BACKOFF = (1.0, 5.0, 15.0, 60.0)
# Outcomes worth another attempt: the forge or the API server down, or a Repository created
# just before the request that the index has not seen yet.
TEMPORARY = frozenset({"forge-error", "unavailable", "timeout", "unknown-repository"})
CONCURRENT = 8  # RunRequests handled at once
SYNC_POLL = 0.1  # seconds between looks at whether the Repository index is listed
# RunRequests remembered as handled by this process (uids), against relists and echoes.
REMEMBERED = 10_000


class RepositoryByName(Protocol):
    # Set once the first list arrived: before it, every Repository would look unknown.
    synced: threading.Event

    def get(self, namespace: str, name: str) -> Repository | None: ...


class RunRequestStore(Protocol):
    def write_outcome(self, request: RunRequest, outcome: Outcome) -> bool: ...


class RunRequestWatch:
    """A `watching.Consumer` that hands unhandled RunRequests to the event loop's worker."""

    def __init__(self, worker: RunRequestWorker, loop: asyncio.AbstractEventLoop) -> None:
        self._worker = worker
        self._loop = loop

    def on_relist(self, objects: Sequence[Mapping[str, Any]]) -> None:
        for obj in objects:
            self._offer(obj)

    def on_event(self, event: WatchEvent[Object]) -> None:
        if event.type != EventType.DELETED:
            self._offer(event.object)

    def _offer(self, obj: Mapping[str, Any]) -> None:
        try:
            request = RunRequest.from_object(obj)
        except (KeyError, TypeError, ValueError):
            return  # the CRD makes this unlikely; an older version's object is left alone
        if request.outcome is None:
            self._loop.call_soon_threadsafe(self._worker.submit, request)


class RunRequestWorker:
    """Handles each RunRequest once per process, up to `CONCURRENT` at a time."""

    def __init__(self, receiver: Receiver, *, repositories: RepositoryByName,
                 store: RunRequestStore) -> None:
        self._receiver = receiver
        self._repositories = repositories
        self._store = store
        self._queue: asyncio.Queue[RunRequest] = asyncio.Queue()
        self._seen: dict[str, None] = {}  # uids queued or handled, oldest first
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(CONCURRENT)

    def submit(self, request: RunRequest) -> None:
        if request.uid in self._seen:
            return
        self._seen[request.uid] = None
        while len(self._seen) > REMEMBERED:
            self._seen.pop(next(iter(self._seen)))
        self._queue.put_nowait(request)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def close(self) -> None:
        tasks = [task for task in (self._task, *self._tasks) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self) -> None:
        while not self._repositories.synced.is_set():
            await asyncio.sleep(SYNC_POLL)
        while True:
            request = await self._queue.get()
            task = asyncio.get_running_loop().create_task(self._handle_until_done(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle_until_done(self, request: RunRequest) -> None:
        """Handle, retrying what may pass (the forge or the API server down, a Repository
        the index has not seen yet), then write the outcome."""
        async with self._slots:
            for attempt, delay in enumerate((*RETRY_BACKOFF, None)):
                outcome = await self.handle(request)
                if outcome.outcome not in TEMPORARY or delay is None:
                    break
                log.info("run request will be tried again", run_request=request.key,
                         attempt=attempt + 1, outcome=outcome.outcome)
                await asyncio.sleep(delay)
        try:
            if not await asyncio.to_thread(self._store.write_outcome, request, outcome):
                log.info("run request answered by another replica", run_request=request.key)
        except Exception as error:  # the request stays without a status: shown as such
            log.warning("could not write the run request's status",
                        run_request=request.key, error=repr(error)[:300])

    async def handle(self, request: RunRequest) -> Outcome:
        """Turn `request` into at most one run; never raises for a refusal."""
        with bound_contextvars(run_request=request.key, event=request.event):
            repository = self._repositories.get(request.namespace, request.repository)
            if repository is None:
                return Outcome(outcome="unknown-repository",
                               message=f"no Repository {request.repository} in namespace "
                               f"{request.namespace}")
            try:
                outcome = await self._start(request, repository)
            except Exception as error:
                answer = answer_for_error(error)
                if answer is None:
                    raise
                outcome = Outcome(outcome=answer.outcome, message=_message(answer))
            log.info("run request handled", outcome=outcome.outcome,
                     pipeline_run=outcome.pipeline_run)
            return outcome

    async def _start(self, request: RunRequest, repository: Repository) -> Outcome:
        receiver = self._receiver
        access = await receiver.repository_forges.for_repository(repository)
        target = Target(repository=repository, name=forge_name(repository),
                        access=access, delivery_id=DeliveryId(request.key),
                        receiver=receiver)
        sha, branch = request.sha, request.branch
        if sha is None:
            forge = target.forge
            if branch is None:
                branch = await target.call(lambda: forge.default_branch(target.name))
            wanted = branch
            sha = await target.call(lambda: forge.branch_head(target.name, wanted))
            if sha is None:
                return Outcome(outcome="unknown-branch",
                               message=f"{target.name} has no branch {branch!r}")
        event = Event(
            kind=EventKind(request.event),
            repository=target.name,
            repository_url=f"{repository.url}.git",
            sha=sha,
            ref=f"refs/heads/{branch}" if branch else "",
            branch=branch,
            author=request.requested_by,
            schedule=request.schedule,
            params=request.params,
        )
        decision = Decision(trust=Trust.TRUSTED, reason=started_by(request))
        answer = await start_run(event, target, trust=decision, name_prefix=_prefix(request))
        # The run's name is made of this request's uid, so a run that already exists was
        # created for this request (by another replica, or before a restart): the outcome
        # is "created" whichever replica writes it first.
        result = "created" if answer.outcome == "existing" else answer.outcome
        outcome = Outcome(outcome=result, message=_message(answer), sha=sha,
                          pipeline_run=next(iter(answer.body.get("pipelineRuns") or ()), ""))
        self._note(repository, request, event, outcome)
        return outcome

    def _note(self, repository: Repository, request: RunRequest, event: Event,
              outcome: Outcome) -> None:
        """The Repository's Last-Event column shows scheduled and manual runs too."""
        if self._receiver.last_events is None:
            return
        self._receiver.last_events.record(repository, LastEvent(
            delivery_id=request.name, kind=event.kind.value, outcome=outcome.outcome,
            time=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ref=event.ref, sha=event.sha, message=outcome.message,
            pipeline_runs=(outcome.pipeline_run,) if outcome.pipeline_run else (),
        ))


def started_by(request: RunRequest) -> str:
    """What the commit's status says about who started the run."""
    if request.event == EventKind.SCHEDULE.value:
        return f"schedule {request.schedule}"
    return f"manual run by {request.requested_by}"


def forge_name(repository: Repository) -> RepositoryName:
    """owner/name (GitLab: group/subgroup/name) from the Repository's URL."""
    return RepositoryName(urlsplit(repository.url).path.strip("/").removesuffix(".git"))


def _prefix(request: RunRequest) -> str:
    # One run per RunRequest: two requests of one commit are two runs, one request handled
    # twice is one.
    digest = hashlib.sha256(request.uid.encode()).hexdigest()[:6]
    return f"{'sched' if request.event == EventKind.SCHEDULE.value else 'manual'}-{digest}-"


def _message(answer: Answer) -> str:
    body = answer.body
    return str(body.get("skipped") or body.get("error") or body.get("trust") or "")
