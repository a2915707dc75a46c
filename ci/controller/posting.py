"""Handle one run: plan its reports, write them ahead, send them, remember the answers.

Called by the queue, one call per run at a time. Nothing here blocks the event loop: API
server calls go to threads, forge calls are async.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from ci.controller.leadership import Leadership
from ci.controller.logs import LogTails
from ci.controller.metrics import ControllerMetrics
from ci.controller.reporting import RUN_REPORT, Memory, Report, newest, plan
from ci.controller.retrying import Retry, retry_for
from ci.controller.runs import RunKey, RunSnapshot, RunState, observe
from ci.controller.settings import ControllerSettings
from ci.controller.store import Observation, RunStore, newer_version
from ci.controller.summaries import Presentation, render
from ci.controller.verification import RunVerifier, repository_of
from ci.forges import checks
from ci.forges.client import CheckRunLookup, ShownCheckRun
from ci.forges.connections import Connection, ReportMode
from ci.forges.errors import ForgeError, ForgeUnreachableError
from ci.forges.types import ReportId, RepositoryName
from ci.kube import labels, patching
from ci.kube.errors import CredentialsError
from ci.kube.repositories import Repository, RepositoryIndex
from ci.kube.resources import PIPELINE_RUN
from ci.repository_forges import RepositoryForges

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Attempts at writing the memory annotation when the run keeps changing under us.
SAVE_ATTEMPTS = 5
# Seconds before re-planning when another writer changed the memory first.
REPLAN_DELAY = 0.2
# Seconds before looking again at a run whose Repository or credentials are missing: the
# platform engineer may be creating them right now.
MISSING_SETUP_DELAY = 30.0
# A run the watch shows final while one of its TaskRuns still shows it running: Tekton ends
# the TaskRuns first, so their own final update is on its way (the two watches are separate
# streams). The run's reports wait for it, looking again every `LAGGING_TASK_RUN_DELAY`
# seconds, so a check shows the failing step's log and its TaskRun's own message rather than
# "Not all Steps in the Task have finished executing" for good. After
# `LAGGING_TASK_RUN_LIMIT` seconds (a TaskRun that never ends) they go out as they are.
LAGGING_TASK_RUN_DELAY = 0.25
LAGGING_TASK_RUN_LIMIT = 10.0


@dataclass(slots=True)
class ReadBack:
    """What the forge showed of the reports asked about: `shown` are acknowledged without
    sending (with the check run's id), `absent` are sent with no risk of a repeat, `found`
    are check runs to update instead of creating. A report in none is sent in doubt."""

    shown: dict[str, ReportId | None] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)
    found: dict[str, ReportId] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ForgeFailure:
    """A forge call that failed: `retry` when it is worth another try, else refused."""

    error: ForgeError
    retry: Retry | None

    @property
    def message(self) -> str:
        return str(self.error)[:300]  # remote bodies are truncated before they are logged


class Poster:
    def __init__(
        self,
        *,
        api: Any,  # kubernetes.client.CustomObjectsApi
        store: RunStore,
        repositories: RepositoryIndex,
        forges: RepositoryForges,
        log_tails: LogTails,
        leadership: Leadership,
        metrics: ControllerMetrics,
        settings: ControllerSettings,
        incarnation: str,
        on_final: Callable[[RunSnapshot, Repository], None],
        verifier: RunVerifier,
    ) -> None:
        self._verifier = verifier
        self._api = api
        self._store = store
        self._repositories = repositories
        self._forges = forges
        self._log_tails = log_tails
        self._leadership = leadership
        self._metrics = metrics
        self._settings = settings
        self._incarnation = incarnation
        self._on_final = on_final
        self._presentation = Presentation(
            context_prefix=settings.context_prefix,
            details_url_template=settings.details_url_template,
            job_details_url_template=settings.job_details_url_template,
        )
        # The memory this process last wrote, per run uid: newer than the annotation of an
        # event that was queued before our write.
        self._memories: dict[str, Memory] = {}
        # Per run uid: when (monotonic) it was first seen final ahead of its TaskRuns.
        self._lagging_since: dict[str, float] = {}

    async def handle(self, key: RunKey, observation: Observation, attempt: int) -> Retry | None:
        if observation.deleted:
            if observation.run is not None:
                self._memories.pop(observation.run.uid, None)
                self._lagging_since.pop(observation.run.uid, None)
                self._verifier.forget(observation.run.uid)
            return None
        run = observation.run or self._store.run(key)
        repository = self._repository_of(run) if run is not None and not run.deleting else None
        # Only runs the receiver bound to this Repository, as they were signed: anything else
        # (a hand-made run, changed labels) is logged and counted, never reported.
        if (run is None or repository is None
                or await self._verifier.refusal(run, repository) is not None):
            return None
        state = observe(run, self._store.task_runs(key))
        # The event may be older than our own last write, or than the store's copy: the
        # memory is the newest of the three, whatever state the event shows.
        stored = self._store.run(key)
        saved_memory = newest(
            Memory.of_annotations(run.annotations),
            Memory.of_annotations(stored.annotations) if stored is not None else None,
        )
        memory = newest(saved_memory, self._memories.get(run.uid))
        reports = plan(state, memory)
        if not reports:
            return await self._settle(run, state, repository, memory, saved=saved_memory)
        # A run without its commit cannot be reported at all (the receiver always sets both).
        if not run.repository or not run.sha:
            return None
        # The forge and a bound log only for a run with something to report: after a
        # restart, nearly every run has nothing.
        bound = log.bind(run=f"{run.namespace}/{run.name}", repository=run.repository,
                         sha=run.sha)
        forge = await self._forge_for(repository, log=bound)
        if isinstance(forge, Retry):
            return forge
        return self._wait_for_task_runs(run, state) or await self._post(
            run, state, memory, reports, forge=forge, observation=observation, attempt=attempt,
            log=bound)

    def _wait_for_task_runs(self, run: RunSnapshot, state: RunState) -> Retry | None:
        """A `Retry` while `run` is final and one of its TaskRuns is not yet, for less than
        `LAGGING_TASK_RUN_LIMIT` seconds so far."""
        behind = state.conclusion.final and any(
            job.task_run is not None and not job.task_run.conclusion.final for job in state.jobs)
        if not behind:
            self._lagging_since.pop(run.uid, None)
            return None
        since = self._lagging_since.setdefault(run.uid, time.monotonic())
        if time.monotonic() - since < LAGGING_TASK_RUN_LIMIT:
            return Retry(LAGGING_TASK_RUN_DELAY)
        return None

    async def _settle(
        self,
        run: RunSnapshot,
        state: RunState,
        repository: Repository,
        memory: Memory,
        *,
        saved: Memory,
    ) -> Retry | None:
        """Nothing to report: save what only this process remembers, then housekeeping."""
        # Acknowledgements the forge gave that a busy API server kept us from saving: save
        # them now, or a restart would take them for reports still in flight.
        unsaved = memory.sequence > saved.sequence and self._leadership.held()
        if unsaved and await self._save(run, memory, base=None) is None:
            return Retry(REPLAN_DELAY)
        if state.conclusion.final:
            self._on_final(run, repository)
        return None

    async def _forge_for(self, repository: Repository, *, log: Any) -> Connection | Retry:
        try:
            found = await self._forges.for_repository(repository)
        except CredentialsError as error:
            log.warning("no credentials to report with", error=str(error))
            return Retry(MISSING_SETUP_DELAY)
        if found.connection is None:
            log.warning("the Repository's Secret has no forge credentials")
            return Retry(MISSING_SETUP_DELAY)
        return found.connection

    def _repository_of(self, run: RunSnapshot) -> Repository | None:
        return repository_of(run, self._repositories)

    async def _post(
        self,
        run: RunSnapshot,
        state: RunState,
        memory: Memory,
        reports: Sequence[Report],
        *,
        forge: Connection,
        observation: Observation,
        attempt: int,
        log: Any,
    ) -> Retry | None:
        # A leader that cannot trust its lease right now (a renewal slower than the lease's
        # trusted share, on a busy API server) reports nothing, and looks again once the
        # renewal may have landed: dropped, the run would wait for its next event, which for a
        # finished run never comes. A lease lost for good ends the whole process instead.
        if not self._leadership.held():
            return Retry(self._settings.leader.renew_interval)
        ahead = await self._write_ahead(run, state, memory, reports, forge=forge,
                                        attempt=attempt, log=log)
        if isinstance(ahead, Retry):
            return ahead
        run, memory, reports = ahead
        tails = {}
        if forge.mode is ReportMode.CHECK_RUNS and any(r.conclusion.final for r in reports):
            repository = self._repository_of(run)
            tails = await self._log_tails.for_jobs(
                run, state.jobs, also_mask=forge.masked,
                repository=repository.name if repository is not None else None)
        assert run.repository is not None and run.sha is not None  # the saved run has them too
        for report in reports:
            if not self._leadership.held():
                self._memories[run.uid] = memory  # what was acknowledged so far is kept
                return Retry(self._settings.leader.renew_interval)
            status = render(report, state, presentation=self._presentation, log_tails=tails)
            sent = await self._call_forge(
                forge.client.report_status(RepositoryName(run.repository), run.sha, status,
                                           report_id=report.report_id),
                forge=forge, attempt=attempt,
            )
            if isinstance(sent, ForgeFailure):
                if sent.retry is not None:
                    log.info("report failed; will retry", report=report.key,
                             conclusion=report.conclusion.value,
                             retry_in=sent.retry.delay, error=sent.message)
                    self._memories[run.uid] = memory
                    return sent.retry
                self._metrics.reports.labels(forge.kind, "rejected").inc()
                log.error("forge refused the report; not retrying", report=report.key,
                          conclusion=report.conclusion.value, error=sent.message)
                memory = memory.with_acknowledged(report.key, report.conclusion,
                                                  report_id=None, rejected=True)
            else:
                self._metrics.reports.labels(forge.kind, "acknowledged").inc()
                self._metrics.report_latency.labels(forge.kind).observe(
                    max(0.0, time.time() - observation.seen))
                log.info("reported", report=report.key, conclusion=report.conclusion.value,
                         report_id=sent, incarnation=self._incarnation)
                memory = memory.with_acknowledged(report.key, report.conclusion,
                                                  report_id=sent)
        # One write for the plan's acknowledgements (a run's report and its jobs' are
        # planned together): each write costs an API call and comes back as a watch event
        # to handle. A kill before it leaves these reports in `sending` under this
        # incarnation, which the next one reads back from the forge instead of repeating.
        saved = await self._save(run, memory, base=None)
        if saved is None:
            return Retry(REPLAN_DELAY)
        run, memory = saved
        if state.conclusion.final:
            repository = self._repository_of(run)
            if repository is not None:
                self._on_final(run, repository)
        return None

    async def _write_ahead(
        self,
        run: RunSnapshot,
        state: RunState,
        memory: Memory,
        reports: Sequence[Report],
        *,
        forge: Connection,
        attempt: int,
        log: Any,
    ) -> tuple[RunSnapshot, Memory, Sequence[Report]] | Retry:
        """Step 2 of `ci.controller.reporting`: the run and memory as written, and the
        reports still to send (those the forge already showed are acknowledged instead)."""
        read_back = await self._read_back(run, state, memory, reports, forge=forge,
                                          attempt=attempt, log=log)
        if isinstance(read_back, Retry):
            return read_back
        ahead = memory
        for report in reports:
            if report.key in read_back.shown:
                ahead = ahead.with_acknowledged(report.key, report.conclusion,
                                                report_id=read_back.shown[report.key])
        # A check run found in an older state is updated, never created a second time.
        to_send = [
            dataclasses.replace(report, report_id=read_back.found.get(report.key,
                                                                      report.report_id))
            for report in reports if report.key not in read_back.shown
        ]
        if to_send:
            ahead = ahead.with_sending(to_send, incarnation=self._incarnation,
                                       absent=read_back.absent)
        new_doubts = len(ahead.doubts) - len(memory.doubts)
        if new_doubts > 0:
            self._metrics.doubts.inc(new_doubts)
            log.warning("re-sending reports a killed controller may have delivered",
                        doubts=list(ahead.doubts[-new_doubts:]))
        # One write both acknowledges what the forge already shows and writes the rest ahead.
        saved = await self._save(run, ahead, base=memory)
        if saved is None:
            return Retry(REPLAN_DELAY)
        return saved[0], saved[1], to_send

    async def _read_back(
        self,
        run: RunSnapshot,
        state: RunState,
        memory: Memory,
        reports: Sequence[Report],
        *,
        forge: Connection,
        attempt: int,
        log: Any,
    ) -> ReadBack | Retry:
        """Ask the forge about the reports an earlier attempt may already have delivered.

        Commit statuses: those in doubt (sent by a killed predecessor) are read back, and
        so are those this process sent and never heard back about (a timeout, a 5xx).
        Check runs: also every creation written ahead and never acknowledged, by any
        process and of any state (a creation that timed out, or one killed before the run
        moved on): creating it again would make a second check run. A temporary failure
        retries the run like a failed send; a refusal (4xx) is not retried, and the report
        is sent in doubt: a repeat is better than a loss.
        """
        read_back = ReadBack()
        assert run.repository is not None and run.sha is not None  # checked by the caller
        repository = RepositoryName(run.repository)
        for report in reports:
            if not self._worth_asking(report, memory, forge=forge):
                continue
            # Without log tails: only the state, title and link are compared.
            status = render(report, state, presentation=self._presentation, log_tails={})
            asked: Awaitable[bool | ShownCheckRun | None]
            if forge.mode is ReportMode.COMMIT_STATUS:
                asked = forge.client.has_status(repository, run.sha, status)
            elif isinstance(forge.client, CheckRunLookup):
                asked = forge.client.find_check_run(repository, run.sha, status)
            else:
                continue
            found = await self._call_forge(asked, forge=forge, attempt=attempt)
            if isinstance(found, ForgeFailure):
                if found.retry is not None:
                    log.info("reading back failed; will retry", report=report.key,
                             conclusion=report.conclusion.value, retry_in=found.retry.delay,
                             error=found.message)
                    self._memories[run.uid] = memory
                    return found.retry
                log.error("forge refused reading reports back; sending in doubt",
                          report=report.key, conclusion=report.conclusion.value,
                          error=found.message)
                continue
            fields = {"report": report.key, "conclusion": report.conclusion.value}
            if found is True or (isinstance(found, ShownCheckRun) and found.current):
                read_back.shown[report.key] = (
                    found.report_id if isinstance(found, ShownCheckRun) else None)
                self._metrics.recovered.labels(forge.kind).inc()
                log.info("already on the forge; acknowledged without sending", **fields,
                         incarnation=self._incarnation)
            elif isinstance(found, ShownCheckRun):
                read_back.found[report.key] = found.report_id
                read_back.absent.add(report.key)
                log.info("on the forge in an older state; updating it", **fields,
                         report_id=found.report_id)
            else:
                read_back.absent.add(report.key)
                log.info("not on the forge; sending", **fields)
        waiting = await self._waiting_check_run(run, state, reports, read_back, forge=forge,
                                                attempt=attempt, log=log)
        if isinstance(waiting, Retry):
            self._memories[run.uid] = memory
            return waiting
        if waiting is not None:
            read_back.found[RUN_REPORT] = waiting
        return read_back

    async def _waiting_check_run(
        self,
        run: RunSnapshot,
        state: RunState,
        reports: Sequence[Report],
        read_back: ReadBack,
        *,
        forge: Connection,
        attempt: int,
        log: Any,
    ) -> ReportId | Retry | None:
        """The receiver's "waiting" check run at the run's commit, still open, which the
        run's own check run is to take over (update, with the run's `external_id`) rather
        than leave queued beside it; asked once, before the run's check run is created."""
        report = next((r for r in reports if r.key == RUN_REPORT), None)
        if (report is None or report.report_id is not None or RUN_REPORT in read_back.shown
                or RUN_REPORT in read_back.found or forge.mode is not ReportMode.CHECK_RUNS
                or not isinstance(forge.client, CheckRunLookup)):
            return None
        assert run.repository is not None and run.sha is not None  # checked by the caller
        probe = dataclasses.replace(
            render(report, state, presentation=self._presentation, log_tails={}),
            external_id=checks.WAITING_EXTERNAL_ID)
        found = await self._call_forge(
            forge.client.find_check_run(RepositoryName(run.repository), run.sha, probe),
            forge=forge, attempt=attempt)
        if isinstance(found, ForgeFailure):
            if found.retry is not None:
                log.info("looking for a waiting check run failed; will retry",
                         retry_in=found.retry.delay, error=found.message)
                return found.retry
            log.error("forge refused listing check runs; not taking over a waiting one",
                      error=found.message)
            return None
        if found is None or found.completed:
            return None
        log.info("taking over the receiver's waiting check run", report_id=found.report_id)
        return found.report_id

    def _worth_asking(self, report: Report, memory: Memory, *, forge: Connection) -> bool:
        if memory.in_doubt(report.key, report.conclusion, incarnation=self._incarnation):
            return True
        sending = memory.sending.get(report.key)
        if forge.mode is ReportMode.CHECK_RUNS:
            return report.report_id is None and sending is not None
        # A status this process sent without an answer (a timeout, a 5xx after the forge
        # stored it): sent again unasked, the commit would show the same state twice.
        return sending is not None and sending.conclusion == report.conclusion

    async def _call_forge(
        self, call: Awaitable[T], *, forge: Connection, attempt: int
    ) -> T | ForgeFailure:
        """One forge call under the forge timeout; a failure is classified (retry or not)
        and counted, and the caller decides what it means for its report."""
        try:
            return await asyncio.wait_for(call, self._settings.forge_timeout)
        except (ForgeError, TimeoutError) as error:
            failure = (error if isinstance(error, ForgeError)
                       else ForgeUnreachableError("forge call timed out"))
        retry = retry_for(failure, attempt=attempt, settings=self._settings.retry)
        status_code = str(failure.status or type(failure).__name__)
        counter = self._metrics.retries if retry is not None else self._metrics.rejections
        counter.labels(forge.kind, status_code).inc()
        return ForgeFailure(failure, retry)

    async def _save(
        self, run: RunSnapshot, memory: Memory, *, base: Memory | None
    ) -> tuple[RunSnapshot, Memory] | None:
        """Write `memory` to the run; None if another writer's memory is newer (re-plan).

        `base` is the memory `memory` was planned from: on a conflict the fresh object's
        memory must still be `base` (else someone else reported meanwhile). Without `base`
        (an acknowledgement) our memory is written over anything older.
        """
        stored = self._store.run(run.key)
        version: str | None = (
            stored.resource_version
            if stored is not None and stored.uid == run.uid
            and newer_version(stored.resource_version, run.resource_version)
            else run.resource_version
        )
        for _ in range(SAVE_ATTEMPTS):
            try:
                written = await asyncio.to_thread(
                    patching.merge_patch, self._api, PIPELINE_RUN,
                    namespace=run.namespace, name=run.name,
                    patch={"metadata": {"annotations": {labels.REPORTED: memory.dumps()}}},
                    resource_version=version,
                    timeout=self._settings.kubernetes.request_timeout_seconds,
                )
            except patching.PatchConflictError:
                fresh = await asyncio.to_thread(
                    patching.read, self._api, PIPELINE_RUN, namespace=run.namespace,
                    name=run.name, timeout=self._settings.kubernetes.request_timeout_seconds)
                if fresh is None:
                    return None
                current = Memory.of_annotations(
                    (fresh.get("metadata") or {}).get("annotations") or {})
                limit = base.sequence if base is not None else memory.sequence - 1
                if current.sequence > limit:
                    self._memories.pop(run.uid, None)
                    self._store.remember(RunSnapshot.of(fresh))
                    return None
                version = str((fresh.get("metadata") or {}).get("resourceVersion", ""))
                continue
            except patching.ObjectGoneError:
                return None
            snapshot = RunSnapshot.of(written)
            self._memories[run.uid] = memory
            self._store.remember(snapshot)
            return snapshot, memory
        # Every attempt met a newer version (Tekton writes the run often while it moves). An
        # acknowledgement we hold must survive until it is saved: dropped, the re-plan would
        # see the report still in flight and send it again (a second check run, where the
        # forge cannot be asked whether it has one).
        if base is None:
            self._memories[run.uid] = memory
        return None
