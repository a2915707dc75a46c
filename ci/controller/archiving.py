"""Archiving step logs as TaskRuns' steps end: read from `pods/log`, masked, gzipped, stored,
before anything can prune the pod. Apart from reporting: its own queue, workers and
threads, so a slow store or a huge log never holds a status back.

The protocol (exactly once, or nearly; it survives a restart):

1. Every change of a run or of one of its TaskRuns submits the run to the archive queue.
2. Each step that terminated, and every step of a TaskRun that ended (cancelled, timed out:
   a step may never have terminated), is looked up: archived by this process for this pod,
   or a record in the store for this pod (a restart, an earlier leader), means done. Else
   the log is streamed from the API server through the run's masker into the store, then
   its record is written (`ci.archive.steps`). A pod or container with no log to give is
   recorded as lost, with the reason: never silently missing.
3. When the run is final and every step of every TaskRun is recorded, the run gets the
   `ferry.dev/archived` annotation, and pruning (which waits for it) is asked to look.
   After a restart, runs with it are skipped at once.

A kill between a log and its record archives that step again (the same bytes); a kill
between the last record and the annotation repeats only the record reads. A job retried
by Tekton runs in a new pod: the record names the pod, so the last attempt's log is kept.
A run ended for longer than the grace period whose TaskRuns still show steps running (a
lost pod, a stuck Tekton) has them recorded as lost, so pruning is not held back for ever.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from ci.archive.configured import ArchiveSettings
from ci.archive.layout import BadNameError, StepKey
from ci.archive.steps import StepDetails, archive_step, read_record, record_lost
from ci.archive.store import LogStore
from ci.controller.leadership import Leadership
from ci.controller.logs import repository_run_masker
from ci.controller.metrics import ControllerMetrics
from ci.controller.pruning import archived
from ci.controller.retrying import Retry
from ci.controller.runs import (
    PipelineTask,
    RunKey,
    RunSnapshot,
    Step,
    TaskRunSnapshot,
    parse_time,
)
from ci.controller.store import Observation, RunStore
from ci.controller.verification import RunVerifier
from ci.kube import labels, patching
from ci.kube.credentials import CredentialsCache, SecretReader
from ci.kube.errors import LogUnavailableError
from ci.kube.pods import LogStream
from ci.kube.repositories import Repository, RepositoryIndex
from ci.kube.resources import PIPELINE_RUN
from ci.masking import Masker

log = structlog.get_logger(__name__)

# Seconds between attempts while the store fails (full, unreachable) or the API server does.
STORE_RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# Seconds before looking again at a run handled while the lease was not (yet) renewed.
LEADERSHIP_RETRY = 1.0


@dataclass(frozen=True, slots=True)
class _Pending:
    """A step to archive: where its log is, and what its record says besides."""

    key: StepKey
    task_run: TaskRunSnapshot
    step: Step
    details: StepDetails


@dataclass(slots=True)
class _RunState:
    """What this process knows of a run not yet marked archived."""

    # (pipeline task, step) -> the pod whose log is in the store.
    done: dict[tuple[str, str], str] = field(default_factory=dict)
    lost: set[tuple[str, str]] = field(default_factory=set)  # of `done`, those without a log
    masker: Masker | None = None
    # The run, its Repository and TaskRuns as last handled: what a deletion leaves to read.
    last_seen: tuple[RunSnapshot, Repository, tuple[TaskRunSnapshot, ...]] | None = None


class Archiver:
    """The archive queue's handler (`handle`), on the event loop; the work runs in threads
    of its own pool (`settings.workers`)."""

    def __init__(
        self,
        *,
        api: Any,  # kubernetes.client.CustomObjectsApi
        store: RunStore,
        repositories: RepositoryIndex,
        credentials: CredentialsCache,
        read_secret: SecretReader,
        stream_log: LogStream,
        archive: LogStore,
        settings: ArchiveSettings,
        leadership: Leadership,
        metrics: ControllerMetrics,
        verifier: RunVerifier,
        on_archived: Callable[[RunSnapshot, Repository], None],
        request_timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._timeout = request_timeout  # seconds for one API call
        self._store = store
        self._repositories = repositories
        self._credentials = credentials
        self._read_secret = read_secret
        self._stream_log = stream_log
        self._archive = archive
        self._settings = settings
        self._leadership = leadership
        self._metrics = metrics
        self._verifier = verifier
        self._on_archived = on_archived
        self._clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="archive")
        # Runs being archived, by uid; touched only on the event loop.
        self._runs: dict[str, _RunState] = {}
        # Finished steps not archived yet (their store writes failed), by run uid: the
        # `ferry_archive_pending_steps` gauge, which the archive-falling-behind alert reads.
        self._unarchived: dict[str, int] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def in_pool(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    async def handle(self, key: RunKey, observation: Observation, attempt: int) -> Retry | None:
        if observation.deleted or not self._leadership.held():
            # Only a leader serves at all: a lease not held is a renewal running late on a
            # busy machine (or one lost, the process about to end). Retried, not dropped.
            return (await self._deleted(observation.run) if observation.deleted
                    else Retry(LEADERSHIP_RETRY))
        run = self._store.run(key)
        # Without its Repository the run is not ours, or not yet: a new one resubmits all.
        repository = (self._repositories.for_run(run.repository_url, run.namespace)
                      if run is not None and not archived(run) else None)
        # A run the receiver did not bind is no run of Ferry's: its logs are not kept as if
        # they were (the refusal is logged and counted once, by the verifier).
        if (run is None or repository is None
                or await self._verifier.refusal(run, repository) is not None):
            return None
        now = self._clock()
        ended_at = parse_time(run.completion_time)
        since_end = now - ended_at.timestamp() if ended_at is not None else 0.0
        overdue = run.conclusion.final and since_end >= self._settings.grace
        task_runs = self._store.task_runs(key)
        self._state(run).last_seen = (run, repository, task_runs)
        pending, waiting = self._collect(run, repository, task_runs, overdue=overdue)
        failed = await self._archive_all(run, repository, pending) if pending else None
        self._count_unarchived(run.uid, len(pending) if failed is not None else 0)
        if failed is not None:
            delay = STORE_RETRY_DELAYS[min(attempt, len(STORE_RETRY_DELAYS) - 1)]
            log.warning("cannot archive step logs yet; will retry",
                        run=f"{run.namespace}/{run.name}", where=self._settings.where,
                        retry_in=delay, error=f"{type(failed).__name__}: {str(failed)[:200]}")
            return Retry(delay)
        if not run.conclusion.final:
            return None
        if waiting and not overdue:
            # TaskRuns end a moment after their run; their events wake this run again. The
            # retry only bounds the wait by the grace period.
            return Retry(max(1.0, min(self._settings.grace - since_end, 60.0)))
        return await self._mark_archived(run, repository)

    async def _deleted(self, run: RunSnapshot | None) -> Retry | None:
        """The PipelineRun was deleted (by hand, or by another tool) before it was archived:
        what is left of its steps is read while the pods last, the rest recorded lost."""
        state = self._runs.get(run.uid) if run is not None else None
        if state is None or state.last_seen is None or not self._leadership.held():
            if run is not None:
                self._runs.pop(run.uid, None)
            return None
        last, repository, task_runs = state.last_seen
        pending, _ = self._collect(last, repository, task_runs, overdue=True)
        failed = await self._archive_all(last, repository, pending) if pending else None
        self._runs.pop(last.uid, None)
        self._count_unarchived(last.uid, 0)  # what is still not stored never will be
        if failed is not None:
            self._metrics.archive_failures.inc()
            log.warning("a deleted run's step logs could not all be archived",
                        run=f"{last.namespace}/{last.name}", where=self._settings.where,
                        error=f"{type(failed).__name__}: {str(failed)[:200]}")
        return None

    def _count_unarchived(self, uid: str, steps: int) -> None:
        if steps:
            self._unarchived[uid] = steps
            self._metrics.archive_failures.inc()
        else:
            self._unarchived.pop(uid, None)
        self._metrics.archive_pending.set(sum(self._unarchived.values()))

    def _state(self, run: RunSnapshot) -> _RunState:
        state = self._runs.get(run.uid)
        if state is None:
            state = self._runs[run.uid] = _RunState()
        return state

    def _collect(self, run: RunSnapshot, repository: Repository,
                 task_runs: tuple[TaskRunSnapshot, ...], *, overdue: bool
                 ) -> tuple[list[_Pending], bool]:
        """The steps to archive now, and whether any TaskRun is still to end."""
        tasks = {task.name: task for task in run.tasks}
        done = self._state(run).done
        pending: list[_Pending] = []
        waiting = False
        for task_run in task_runs:
            task = tasks.get(task_run.pipeline_task)
            if task is None:
                continue
            ended = task_run.conclusion.final or overdue
            waiting = waiting or not task_run.conclusion.final
            for step in task_run.steps:
                if step.exit_code is None and not ended:
                    continue
                item = self._pending(run, repository, task, task_run, step)
                if item is not None and done.get((item.key.job, item.key.step)) != item.details.pod:
                    pending.append(item)
        return pending, waiting

    async def _archive_all(self, run: RunSnapshot, repository: Repository,
                           pending: list[_Pending]) -> BaseException | None:
        """Archive the steps in the pool, all at once; the first failure, if any. What was
        archived is remembered here, on the event loop (the pool's threads only store)."""
        try:
            masker = await self._masker(run, repository)
        except Exception as error:
            return error
        results = await asyncio.gather(
            *(self.in_pool(self._archive_one, item, masker, run) for item in pending),
            return_exceptions=True)
        state = self._state(run)
        for item, result in zip(pending, results, strict=True):
            if not isinstance(result, BaseException):
                state.done[item.key.job, item.key.step] = item.details.pod
                if result:
                    state.lost.add((item.key.job, item.key.step))
        return next((result for result in results if isinstance(result, BaseException)), None)

    def _pending(self, run: RunSnapshot, repository: Repository, task: PipelineTask,
                 task_run: TaskRunSnapshot, step: Step) -> _Pending | None:
        try:
            key = StepKey(namespace=run.namespace, repository=repository.name, run=run.name,
                          job=task.name, step=step.name)
        except BadNameError as error:  # Tekton's names are DNS labels; not worth a retry
            log.warning("step not archived: its name is not a path", error=str(error))
            return None
        details = StepDetails(
            job=task.job, variant=task.variant, exit_code=step.exit_code,
            started_at=step.started_at, finished_at=step.finished_at,
            forge_repository=run.repository or "", sha=run.sha or "",
            pod=task_run.pod_name or "", reason=step.termination_reason,
        )
        return _Pending(key=key, task_run=task_run, step=step, details=details)

    async def _masker(self, run: RunSnapshot, repository: Repository) -> Masker:
        state = self._state(run)
        if state.masker is None:
            state.masker = await self.in_pool(self._new_masker, run, repository)
        return state.masker

    def _new_masker(self, run: RunSnapshot, repository: Repository) -> Masker:
        return repository_run_masker(run, repository, credentials=self._credentials,
                                     read_secret=self._read_secret)

    def _archive_one(self, item: _Pending, masker: Masker, run: RunSnapshot) -> bool:
        """In a pool thread: one step, unless its record says it is there already. True
        when the store says its log is lost."""
        existing = read_record(self._archive, item.key)
        if existing is not None and existing.details.pod == item.details.pod:
            return existing.lost is not None
        pod = item.task_run.pod_name
        lost: str | None = None
        if pod is None:
            lost = "the TaskRun never had a pod"
        else:
            try:
                chunks = _first(self._stream_log(run.namespace, pod, item.step.container))
            except LogUnavailableError as error:
                lost = str(error)
            else:
                record = archive_step(self._archive, key=item.key, chunks=chunks,
                                      masker=masker, details=item.details,
                                      max_bytes=self._settings.max_log_bytes)
                self._observe(record.details.finished_at, "archived")
                log.info("step log archived", step=item.key.log_name, bytes=record.size,
                         truncated=record.truncated)
        if lost is not None:
            record_lost(self._archive, key=item.key, details=item.details, reason=lost)
            self._metrics.step_logs.labels("lost").inc()
            log.warning("step log lost", step=item.key.log_name, reason=lost)
        return lost is not None

    def _observe(self, finished_at: str | None, outcome: str) -> None:
        self._metrics.step_logs.labels(outcome).inc()
        finished = parse_time(finished_at)
        if finished is not None:
            self._metrics.archive_delay.observe(max(0.0, self._clock() - finished.timestamp()))

    async def _mark_archived(self, run: RunSnapshot, repository: Repository) -> Retry | None:
        state = self._state(run)
        steps = len(state.done)
        body = json.dumps({"steps": steps, "lost": len(state.lost), "at": _now()},
                          sort_keys=True)
        try:
            written = await self.in_pool(_annotate, self._api, run, body, self._timeout)
        except patching.ObjectGoneError:
            self._runs.pop(run.uid, None)
            return None
        except Exception as error:
            log.warning("cannot mark the run archived; will retry",
                        run=f"{run.namespace}/{run.name}", error=str(error)[:200])
            return Retry(STORE_RETRY_DELAYS[0])
        self._store.remember(RunSnapshot.of(written))
        self._runs.pop(run.uid, None)
        log.info("run archived", run=f"{run.namespace}/{run.name}", steps=steps)
        self._on_archived(run, repository)
        return None


def _annotate(api: Any, run: RunSnapshot, body: str, timeout: float) -> dict[str, Any]:
    # No resourceVersion: this annotation is only ever written once, by the leader, and
    # must not fail because Tekton or the reporter just wrote the run.
    return patching.merge_patch(api, PIPELINE_RUN, namespace=run.namespace, name=run.name,
                                patch={"metadata": {"annotations": {labels.ARCHIVED: body}}},
                                timeout=timeout)


def _first(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks` with its first one read now: the API server's refusal (a pod gone) comes
    with the first read, before anything is written to the store."""
    try:
        head = next(chunks)
    except StopIteration:
        return iter(())

    def rest() -> Iterator[bytes]:
        yield head
        yield from chunks

    return rest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
