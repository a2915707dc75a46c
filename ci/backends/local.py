"""The local backend: run plans on this machine (`ci.local`), report to the forge as they go.

What `ferry serve` uses when no cluster is configured. Each run is a background task: the
commit is fetched into a bare mirror under the state directory, then `ci.local.running.run_plan`
checks it out fresh for each job, in a thread of the run's own (the local runner is threads;
its observer calls are handed back to the event loop, where the reporting and archiving
live). Job changes become statuses (`ferry/<job>`), and the run's end becomes the final
`ferry` status.

A restart must not leave a commit pending forever: every started run is written to
`in-flight.json` and removed when it ends; whatever is still listed at the next start was
interrupted, and is reported as an error then.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import datetime
import functools
import hashlib
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import git
import structlog

from ci.archive import retention
from ci.archive.configured import ArchiveSettings, open_store
from ci.backends import (
    PreviousRun,
    RunRequest,
    SubmittedRun,
    group_of,
    happened_before,
)
from ci.forges import checks
from ci.forges.checks import Contexts
from ci.forges.client import ForgeClient
from ci.forges.errors import ForgeError
from ci.forges.statuses import Conclusion, Status
from ci.forges.types import RepositoryName
from ci.kube.repositories import Repository
from ci.local.archiving import ArchivingObserver, variants_of
from ci.local.engines import Engine, EngineName, HostEngine, find_engine
from ci.local.environment import base_environment, isolated_base_environment
from ci.local.outcomes import JobChange, JobResult, JobState, Observer, RunResult
from ci.local.running import RunOptions, run_plan
from ci.local.stopping import Stop
from ci.local.workspaces import WorkspaceError, WorkspaceOrigin
from ci.masking import Masker
from ci.settings import LocalSettings
from pipelines.names import pipeline_run_name

log = structlog.get_logger(__name__)

T = TypeVar("T")

IN_FLIGHT_FILE = "in-flight.json"
# Names of finished runs remembered, so a late redelivery does not run a commit again.
FINISHED_MEMORY = 1000
# Seconds a stopping run gets to end its steps when the server shuts down.
SHUTDOWN_GRACE_SECONDS = 10.0

_JOB_CONCLUSIONS: Mapping[JobState, Conclusion] = {
    JobState.QUEUED: Conclusion.QUEUED,
    JobState.RUNNING: Conclusion.RUNNING,
    JobState.SUCCESS: Conclusion.SUCCESS,
    JobState.FAILURE: Conclusion.FAILURE,
    JobState.SKIPPED: Conclusion.SKIPPED,
    JobState.CANCELLED: Conclusion.CANCELLED,
    JobState.TIMED_OUT: Conclusion.TIMED_OUT,
}


def _job_conclusion(state: JobState, result: JobResult | None) -> Conclusion:
    """A job's conclusion as the controller reads Tekton's: an `allow_failure` job that
    failed is neutral ("Failed (allowed)"), never a red check."""
    conclusion = _JOB_CONCLUSIONS[state]
    if (result is not None and result.allow_failure
            and conclusion in (Conclusion.FAILURE, Conclusion.TIMED_OUT)):
        return Conclusion.NEUTRAL
    return conclusion


@dataclass(frozen=True, slots=True, kw_only=True)
class InFlight:
    """A started run, as written to the state file."""

    name: str
    repository_key: str  # the Repository's namespace/name
    forge_repository: str  # owner/name on the forge
    sha: str
    group: str  # runs of one branch or pull request share it (cancel-in-progress)
    event_time: str | None = None  # `Event.happened_at`: what supersedes what


ClientFor = Callable[[str], ForgeClient | None]  # Repository key -> its forge client


@dataclass(slots=True)
class _Run:
    flight: InFlight
    stop: Stop
    task: asyncio.Task[None] | None = None
    # What `newest_run` answers: the jobs' states as they change, kept after the run ends.
    trusted: bool = True
    pull_request: int | None = None
    jobs: dict[str, Conclusion] = field(default_factory=dict)
    finished: bool = False


class LocalBackend:
    """Call order: `await start(...)` once (reports interrupted runs), then the `Backend`
    methods, then `await close()` (stops running runs, which report as cancelled)."""

    # Each run reports itself: queued as it starts, its jobs as they go, then the verdict.
    reports_runs = True

    def __init__(
        self,
        *,
        state_directory: Path,
        parallel_jobs: int,
        secrets: Mapping[str, str],
        clone_url: Callable[[Repository], str | None],
        engine: Engine,
        runs_untrusted: bool,
        contexts: Contexts | None = None,
        archive: ArchiveSettings | None = None,
    ) -> None:
        self._contexts = contexts or Contexts()
        # Step logs go to the same store, in the same shape, as the controller's.
        self._archive_settings = archive
        self._archive = open_store(archive) if archive is not None else None
        self._state = state_directory
        self._parallel = parallel_jobs
        self._secrets = dict(secrets)
        self._clone_url = clone_url
        self._engine = engine
        # False on the host engine: the receiver holds untrusted pull requests back (their
        # Repository's policy is waitForOkToTest), and this refuses any that still arrives.
        self._runs_untrusted = runs_untrusted
        self._runs: dict[str, _Run] = {}
        self._finished: deque[str] = deque(maxlen=FINISHED_MEMORY)
        # Every run started, oldest first, finished ones too (for `newest_run`).
        self._history: deque[_Run] = deque(maxlen=FINISHED_MEMORY)

    @property
    def _in_flight_path(self) -> Path:
        return self._state / IN_FLIGHT_FILE

    async def start(self, client_for: ClientFor) -> None:
        self._state.mkdir(parents=True, exist_ok=True)
        if self._archive is not None and self._archive_settings is not None:
            # No controller here: retention is applied at each start (by age and size; a
            # repository taken out of the settings keeps its logs until they age out).
            try:
                await asyncio.to_thread(retention.apply, self._archive,
                                        rules=self._archive_settings.retention,
                                        now=datetime.datetime.now(datetime.UTC))
            except Exception as error:  # a store that is down must not stop the server
                log.warning("retention of archived logs failed", error=str(error)[:200])
        for flight in self._read_in_flight():
            client = client_for(flight.repository_key)
            log.warning("run interrupted by a restart", pipeline_run=flight.name)
            if client is not None:
                await _report(
                    client,
                    flight,
                    Status(
                        conclusion=Conclusion.ERROR,
                        context=self._contexts.run(),
                        title=f"{flight.name}: interrupted by a restart of ferry serve",
                        external_id=flight.name,
                    ),
                )
        self._write_in_flight()

    async def close(self) -> None:
        for run in self._runs.values():
            run.stop.set()
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def submit(self, request: RunRequest) -> SubmittedRun:
        name = pipeline_run_name(request.event, prefix=request.name_prefix)
        if name in self._runs or name in self._finished:
            return SubmittedRun(name=name, created=False)
        flight = InFlight(
            name=name,
            repository_key=request.repository.key,
            forge_repository=request.forge_repository,
            sha=request.event.sha,
            group=_group(request),
            event_time=request.event.happened_at,
        )
        run = _Run(
            flight=flight,
            stop=Stop(),
            trusted=request.trusted,
            pull_request=request.event.pull_request.number if request.event.pull_request else None,
            jobs={job.name: Conclusion.QUEUED for job in request.plan.all_jobs},
        )
        self._runs[name] = run
        self._history.append(run)
        self._write_in_flight()
        run.task = asyncio.create_task(self._run(request, run), name=f"ferry-run-{name}")
        return SubmittedRun(name=name, created=True)

    async def cancel_superseded(self, request: RunRequest, *, newest: str) -> tuple[str, ...]:
        group = _group(request)
        if not group:
            return ()
        time = request.event.happened_at
        # Every listed run was submitted before `newest`: None leaves arrival order to that.
        return self._stop(
            lambda flight: flight.group == group and flight.name != newest
            and happened_before(flight.event_time, None, than=(time, None))
        )

    async def cancel_pull_request(self, repository: Repository, number: int) -> tuple[str, ...]:
        group = f"{repository.key}#pull/{number}"
        return self._stop(lambda flight: flight.group == group)

    async def cancel_run(self, repository: Repository, name: str) -> bool:
        return bool(self._stop(lambda flight: flight.name == name
                               and flight.repository_key == repository.key))

    async def newest_run(
        self, repository: Repository, sha: str, *, pull_request: int | None = None
    ) -> PreviousRun | None:
        for run in reversed(self._history):
            flight = run.flight
            if (flight.repository_key, flight.sha) != (repository.key, sha):
                continue
            if pull_request is not None and run.pull_request != pull_request:
                continue
            return PreviousRun(
                name=flight.name,
                trusted=run.trusted,
                finished=run.finished,
                pull_request=run.pull_request,
                jobs=dict(run.jobs),
            )
        return None

    async def ready(self) -> str | None:
        return None

    def _stop(self, matches: Callable[[InFlight], bool]) -> tuple[str, ...]:
        stopped = []
        for name, run in sorted(self._runs.items()):
            if matches(run.flight) and not run.stop.is_set():
                run.stop.set()
                stopped.append(name)
        return tuple(stopped)

    async def _run(self, request: RunRequest, run: _Run) -> None:
        flight = run.flight
        reporter = _JobReporter(request.forge, flight, self._contexts, states=run.jobs)
        archiving: ArchivingObserver | None = None
        structlog.contextvars.bind_contextvars(pipeline_run=flight.name)
        status = Status(
            conclusion=Conclusion.ERROR,
            context=self._contexts.run(),
            title=f"{flight.name}: Ferry failed to run it",
            external_id=flight.name,
        )
        try:
            # In the run's own task, so this "queued" cannot overtake its verdict, and the
            # delivery does not wait for the forge.
            if not request.trusted and not self._runs_untrusted:
                log.error("refused to run untrusted code on the host engine")
                status = Status(
                    conclusion=Conclusion.ERROR,
                    context=self._contexts.run(),
                    title=f"{flight.name}: untrusted code does not run on this machine's "
                    "host engine; a maintainer's /ok-to-test runs it",
                    external_id=flight.name,
                )
                return
            queued = checks.queued(self._contexts, flight.name, note=request.note)
            await _report(request.forge, flight, queued)
            archiving = self._archiving(request, flight, reporter)
            observer: Observer = archiving if archiving is not None else reporter
            origin = await asyncio.to_thread(self._fetch, request)
            result = await _in_own_thread(functools.partial(
                run_plan,
                request.plan,
                request.event,
                origin=origin,
                options=RunOptions(
                    parallel=self._parallel,
                    secrets=self._secrets,
                    run_name=flight.name,
                    temporary_directory=self._work_directory(),
                    engine=self._engine,
                    private_home=True,
                ),
                observer=_OnTheLoop(observer, asyncio.get_running_loop()),
                stop=run.stop,
            ))
            status = _final_status(self._contexts, flight.name, result, note=request.note)
        except WorkspaceError as error:
            log.warning("could not check the commit out", error=str(error))
            status = Status(
                conclusion=Conclusion.ERROR,
                context=self._contexts.run(),
                title=f"{flight.name}: cannot fetch {flight.sha[:12]}",
                text=str(error),
                external_id=flight.name,
            )
        except Exception:  # a bug in a background task: report it, never leave it pending
            log.exception("local run failed")
        except asyncio.CancelledError:  # the server stops: so do the run's steps
            run.stop.set()
            raise
        finally:
            await reporter.drain()
            # Over before its verdict is shown, so whoever reads the verdict finds it over.
            run.finished = True
            if status.conclusion is not Conclusion.SUCCESS:
                # A job that never got to its end (the run was refused, stopped or broke)
                # did not pass.
                for job, state in run.jobs.items():
                    if not state.final:
                        run.jobs[job] = status.conclusion
            await _report(request.forge, flight, status)
            if archiving is not None:
                await archiving.close()  # after the verdict: archiving never delays it
            self._runs.pop(flight.name, None)
            self._finished.append(flight.name)
            self._write_in_flight()
            log.info("local run ended", conclusion=status.conclusion.value)

    def _archiving(self, request: RunRequest, flight: InFlight, reporter: _JobReporter
                   ) -> ArchivingObserver | None:
        if self._archive is None or self._archive_settings is None:
            return None
        masker = Masker(self._secrets.values())
        if request.clone_token:
            masker.add(request.clone_token)
        return ArchivingObserver(
            reporter, archive=self._archive, namespace=request.repository.namespace,
            repository=request.repository.name, run=flight.name, masker=masker,
            max_bytes=self._archive_settings.max_log_bytes,
            variants=variants_of((job.name, job.matrix) for job in request.plan.all_jobs),
            forge_repository=flight.forge_repository, sha=flight.sha,
        )

    def _work_directory(self) -> Path:
        directory = self._state / "work"
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _fetch(self, request: RunRequest) -> WorkspaceOrigin:
        """The commit, fetched into a bare mirror of the repository (git runs without a
        shell: the URL and sha are arguments, and `--` ends the options)."""
        url = self._clone_url(request.repository) or request.event.repository_url
        mirror = self._state / "repositories" / hashlib.sha256(url.encode()).hexdigest()[:16]
        environment = {"GIT_TERMINAL_PROMPT": "0"}
        if request.clone_token:
            basic = base64.b64encode(f"x-access-token:{request.clone_token}".encode()).decode()
            environment |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        sha = request.event.sha
        try:
            repository = (
                git.Repo(mirror) if mirror.is_dir() else git.Repo.init(mirror, bare=True)
            )
            with repository, repository.git.custom_environment(**environment):
                # Under a ref of its own: the per-job checkouts clone the mirror, and see
                # only what refs reach. Full history (no --depth): the mirror is reused, so
                # later fetches are small, and a shallow mirror cannot be cloned from.
                try:
                    repository.git.fetch("--quiet", "--", url, f"+{sha}:refs/ferry/{sha}")
                except git.GitCommandError:
                    # Servers that refuse a bare sha: fetch the refs, which hold it.
                    refs = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
                    repository.git.fetch("--quiet", "--", url, *refs)
        except (git.GitCommandError, OSError) as error:
            raise WorkspaceError(f"cannot fetch {sha[:12]}: {error}") from error
        return WorkspaceOrigin(repository=mirror, sha=sha)

    def _read_in_flight(self) -> list[InFlight]:
        try:
            entries = json.loads(self._in_flight_path.read_text(encoding="utf-8"))
            return [InFlight(**entry) for entry in entries]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError) as error:
            log.error("unreadable in-flight run list; starting afresh", error=str(error))
            return []

    def _write_in_flight(self) -> None:
        entries = [asdict(run.flight) for run in self._runs.values()]
        temporary = self._in_flight_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(entries, indent=1), encoding="utf-8")
        os.replace(temporary, self._in_flight_path)  # atomic: a crash leaves old or new


def engine_for(settings: LocalSettings) -> Engine:
    """The engine `local.engine` names; raises `EngineNotFoundError` for a missing client.

    Host steps get a base built from nothing (`isolated_base_environment`); a container
    client gets the server's few base variables (PATH to find itself, HOME for its config),
    which stay in the client: only the step's own variables are passed into the container.
    """
    if settings.engine == "host":
        return HostEngine(isolated_base_environment(path=settings.step_path))
    return find_engine(EngineName(settings.engine), base=base_environment())


async def _in_own_thread(function: Callable[[], T]) -> T:
    """`function()` in a thread of its own, awaited. A run lasts minutes: not in the loop's
    small default pool (`asyncio.to_thread`), which every fetch and archive shares."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()  # the run's bound log fields go along

    def settle(hand_back: Callable[[], None]) -> None:
        if not future.done():  # done: cancelled, the server is stopping
            hand_back()

    def work() -> None:
        try:
            result = context.run(function)
        except BaseException as error:  # handed to the task that waits for the run
            hand_back = functools.partial(future.set_exception, error)
        else:
            hand_back = functools.partial(future.set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, hand_back)

    threading.Thread(target=work, daemon=True, name="ferry-local-run").start()
    return await future


class _OnTheLoop:
    """The observer `run_plan`'s threads call: hands each call on to `inner` on the
    server's event loop, in the order made (the backend's observers use its tasks)."""

    def __init__(self, inner: Observer, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop

    def job_changed(self, change: JobChange) -> None:
        self._call(functools.partial(self._inner.job_changed, change))

    def step_output(self, *, job: str, step: str, line: str) -> None:
        self._call(functools.partial(self._inner.step_output, job=job, step=step, line=line))

    def _call(self, call: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
            self._loop.call_soon_threadsafe(call)


class _JobReporter:
    """A `ci.local` observer that reports each job's state as `ferry/<job>`, in order.

    `job_changed` must not block, so changes go through a queue to one reporting task;
    one task keeps a job's `running` from overtaking its final state.
    """

    def __init__(
        self,
        forge: ForgeClient,
        flight: InFlight,
        contexts: Contexts,
        *,
        states: dict[str, Conclusion],
    ) -> None:
        self._forge = forge
        self._states = states  # the run's record of its jobs' states, updated here
        self._contexts = contexts
        self._flight = flight
        self._queue: asyncio.Queue[JobChange | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._send())

    def job_changed(self, change: JobChange) -> None:
        self._states[change.job] = _job_conclusion(change.state, change.result)
        self._queue.put_nowait(change)

    def step_output(self, *, job: str, step: str, line: str) -> None:
        log.debug("step output", job=job, step=step, line=line)

    async def drain(self) -> None:
        self._queue.put_nowait(None)
        await self._task

    async def _send(self) -> None:
        while (change := await self._queue.get()) is not None:
            result = change.result
            conclusion = _job_conclusion(change.state, result)
            seconds = result.seconds if result is not None and result.attempts else None
            # The controller's words: no reason after them, which Tekton does not give.
            title = checks.job_title(conclusion, seconds=seconds)
            await _report(
                self._forge,
                self._flight,
                Status(
                    conclusion=conclusion,
                    context=self._contexts.job(change.job),
                    title=title,
                    external_id=self._flight.name,
                ),
            )


def _final_status(contexts: Contexts, name: str, result: RunResult, *, note: str) -> Status:
    """The verdict in the controller's words ("Failed in 12s: test"), so a commit reads the
    same whichever backend ran it."""
    if result.cancelled:
        conclusion = Conclusion.CANCELLED
    elif result.passed:
        conclusion = Conclusion.SUCCESS
    else:
        conclusion = Conclusion.FAILURE
    failed = [job.name for job in result.jobs
              if _job_conclusion(job.state, job) in checks.FAILED]
    return Status(
        conclusion=conclusion,
        context=contexts.run(),
        title=checks.run_title(conclusion, seconds=result.seconds, failed=failed, note=note),
        external_id=name,
    )


def _group(request: RunRequest) -> str:
    """The run's concurrency group (`ci.backends.group_of`) as the state file
    keeps it; empty: none."""
    group = group_of(request.event)
    if group is None:
        return ""
    if group.pull_request is not None:
        return f"{request.repository.key}#pull/{group.pull_request}"
    return f"{request.repository.key}#branch/{group.branch}"


async def _report(forge: ForgeClient, flight: InFlight, status: Status) -> None:
    """Best effort: a forge that is down must not stop the run or the other reports."""
    try:
        await forge.report_status(RepositoryName(flight.forge_repository), flight.sha, status)
    except ForgeError as error:
        log.warning("could not report a status", context=status.context, error=str(error))
