"""The local runner: run a `Plan` for an `Event` on this machine. `ferry run` and `ferry
serve` without Kubernetes (`ci.backends.local`) call `run_plan`.

Call order:

1. `pipelines.preparing.prepare(text, path=..., event=...)` -> its `Plan` (see
   `pipelines.planning`; `Problems` and `NothingToRun` are the caller's to explain).
2. `run_plan(plan, event, origin=..., options=..., observer=..., stop=...)`:
   a. the workspace is prepared (a checkout of `origin.sha`); `WorkspaceError` is raised
      before any job starts when that fails;
   b. `observer.job_changed(QUEUED)` for every job, in plan order;
   c. for each job as the DAG allows (`scheduling`): `job_changed(RUNNING, attempt=n)` per
      attempt, `step_output(...)` per line of its steps, then one final `job_changed` with a
      `JobResult` (SUCCESS, FAILURE, TIMED_OUT, SKIPPED or CANCELLED);
   d. the same for finally jobs;
   e. the `RunResult`, with every job in plan order. Temporary directories are gone by then.
3. Setting `stop` (a `ci.local.stopping.Stop`, from any thread or a signal handler) cancels
   the run: running steps are stopped (their whole process groups) and their jobs end
   CANCELLED, jobs not started end CANCELLED, finally jobs do not run, and `run_plan` still
   returns a `RunResult` (with `cancelled=True`).

`run_plan` blocks its caller (the server runs it in a thread of its own); jobs run in threads
(`scheduling`), and the observer is called from them one call at a time.

A job's attempt runs its steps in order in a fresh copy of the workspace; the first step that
fails ends the attempt. A failed or timed-out attempt is retried `retries` times, each in a
new copy, as Tekton retries a task in a new pod. A job's `timeout` bounds each attempt.
"""

from __future__ import annotations

import os
import secrets as random_tokens
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from msgspec import Struct, field

from ci.local.credentials import job_secrets
from ci.local.engines import Engine, HostEngine
from ci.local.environment import (
    base_environment,
    ferry_variables,
    private_directories,
    step_environment,
)
from ci.local.executing import DEFAULT_GRACE_SECONDS, ProcessEnd, run_process
from ci.local.outcomes import (
    JobChange,
    JobResult,
    JobState,
    Observer,
    RunResult,
    StepResult,
    StepState,
)
from ci.local.scheduling import schedule
from ci.local.stopping import Stop
from ci.local.workspaces import WorkspaceOrigin, Workspaces
from ci.masking import Masker
from pipelines.events import Event
from pipelines.planning import Plan, PlannedJob, PlannedStep
from pipelines.spec import DEFAULT_JOB_TIMEOUT_SECONDS

DEFAULT_RUN_NAME = "local"


def _core_count() -> int:
    return os.cpu_count() or 1


class RunOptions(Struct, frozen=True, kw_only=True):
    """How to run a plan locally; everything the spec does not say."""

    parallel: int = field(default_factory=_core_count)  # jobs at once; default: the cores
    engine: Engine | None = None  # None: steps run on this machine (`HostEngine`)
    # Secret values by env name or `secret/key` (see `credentials`); masked in all output.
    secrets: Mapping[str, str] = field(default_factory=dict)
    run_name: str = DEFAULT_RUN_NAME  # FERRY_PIPELINE_RUN, and part of container names
    # Tekton's own default, so a job without `timeout` is stopped at the same point.
    default_job_timeout_seconds: int = DEFAULT_JOB_TIMEOUT_SECONDS
    grace_seconds: float = DEFAULT_GRACE_SECONDS  # SIGTERM to SIGKILL, on timeout or stop
    temporary_directory: Path | None = None  # where workspaces go; None: the system's
    # Host steps get a fresh HOME and TMPDIR per job attempt (`ferry serve`: code from a
    # webhook); False leaves the engine's base alone (`ferry run`: the developer's own HOME).
    private_home: bool = False


def run_plan(
    plan: Plan,
    event: Event,
    *,
    origin: WorkspaceOrigin,
    options: RunOptions,
    observer: Observer,
    stop: Stop | None = None,
) -> RunResult:
    """Run `plan` for `event` (see the module docstring for the call order)."""
    stop = stop or Stop()
    started = time.monotonic()
    serialised = _OneAtATime(observer)
    with Workspaces(origin, parent=options.temporary_directory) as workspaces:
        workspaces.prepare()
        runner = _JobRunner(plan=plan, event=event, workspaces=workspaces, options=options,
                            observer=serialised, stop=stop)
        results = schedule(
            plan,
            run_job=runner.run,
            report=serialised.job_changed,
            parallel=options.parallel,
            stop=stop,
        )
    return RunResult(jobs=results, cancelled=stop.is_set(), seconds=time.monotonic() - started)


class _OneAtATime:
    """The run's observer, called by one thread at a time (jobs run in threads)."""

    def __init__(self, inner: Observer) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def job_changed(self, change: JobChange) -> None:
        with self._lock:
            self._inner.job_changed(change)

    def step_output(self, *, job: str, step: str, line: str) -> None:
        with self._lock:
            self._inner.step_output(job=job, step=step, line=line)


class _Attempt(Struct, frozen=True, kw_only=True):
    state: JobState
    steps: tuple[StepResult, ...]
    reason: str = ""


class _JobRunner:
    def __init__(
        self,
        *,
        plan: Plan,
        event: Event,
        workspaces: Workspaces,
        options: RunOptions,
        observer: Observer,
        stop: Stop,
    ) -> None:
        self.stop = stop
        self.plan = plan
        self.event = event
        self.workspaces = workspaces
        self.options = options
        self.observer = observer
        self.engine = options.engine or HostEngine(base_environment())
        self.masker = Masker(options.secrets.values())
        self.container_prefix = f"ferry-{options.run_name}-{random_tokens.token_hex(3)}"
        # Regular jobs share the run's timeout; finally jobs keep their own time, as Tekton's
        # `timeouts.finally` gives them.
        self.deadline = (
            None if plan.timeout_seconds is None else time.monotonic() + plan.timeout_seconds
        )

    def run(self, job: PlannedJob) -> JobResult:
        started = time.monotonic()
        attempt = _Attempt(state=JobState.SKIPPED, steps=())
        attempts = 0
        for number in range(1, job.retries + 2):
            if self.stop.is_set():
                reason = "cancelled" if attempts else "cancelled before it started"
                attempt = _Attempt(state=JobState.CANCELLED, steps=attempt.steps, reason=reason)
                break
            attempts = number
            budget = self._budget(job)
            if budget <= 0:
                attempt = _Attempt(
                    state=JobState.TIMED_OUT,
                    steps=(),
                    reason=f"the run's timeout ({self.plan.timeout_seconds}s) passed",
                )
                break
            self.observer.job_changed(JobChange(job=job.name, state=JobState.RUNNING,
                                                attempt=number))
            attempt = self._attempt(job, number=number, budget=budget)
            if attempt.state in (JobState.SUCCESS, JobState.CANCELLED):
                break
        return JobResult(
            name=job.name,
            state=attempt.state,
            allow_failure=job.allow_failure,
            is_finally=job.is_finally,
            attempts=attempts,
            seconds=time.monotonic() - started,
            reason=attempt.reason,
            steps=attempt.steps,
        )

    def _budget(self, job: PlannedJob) -> float:
        timeout = float(job.timeout_seconds or self.options.default_job_timeout_seconds)
        if self.deadline is None or job.is_finally:
            return timeout
        return min(timeout, self.deadline - time.monotonic())

    def _attempt(self, job: PlannedJob, *, number: int, budget: float) -> _Attempt:
        deadline = time.monotonic() + budget
        workspace = self.workspaces.for_job(job, attempt=number)
        secrets = job_secrets(job.secrets, self.options.secrets).values
        ferry = ferry_variables(self.event, job=job.name, run_name=self.options.run_name)
        base: dict[str, str] = {}
        if self.options.private_home and not self.engine.uses_images:
            private = self.workspaces.root / "private" / f"{job.name}-{number}"
            base = private_directories(private)
        results: list[StepResult] = []
        state, reason = JobState.SUCCESS, ""
        for step in job.steps:
            if state is not JobState.SUCCESS:
                results.append(StepResult(name=step.name, state=StepState.NOT_RUN))
                continue
            if self.stop.is_set():
                state, reason = JobState.CANCELLED, "cancelled"
                results.append(StepResult(name=step.name, state=StepState.NOT_RUN))
                continue
            result = self._step(
                job,
                step,
                number=number,
                workspace=workspace,
                environment=step_environment(
                    job=job, step=step, ferry=ferry, secrets=secrets, base=base
                ),
                timeout=deadline - time.monotonic(),
            )
            results.append(result)
            if result.state is StepState.CANCELLED:
                state, reason = JobState.CANCELLED, "cancelled"
            elif result.state is StepState.TIMED_OUT:
                state = JobState.TIMED_OUT
                reason = f"timed out after {_duration(budget)} in step `{step.name}`"
            elif result.state is not StepState.SUCCESS:
                state = JobState.FAILURE
                reason = f"step `{step.name}` exited with code {result.exit_code}"
        return _Attempt(state=state, steps=tuple(results), reason=reason)

    def _step(
        self,
        job: PlannedJob,
        step: PlannedStep,
        *,
        number: int,
        workspace: Path,
        environment: Mapping[str, str],
        timeout: float,
    ) -> StepResult:
        started = time.monotonic()
        if timeout <= 0:
            return StepResult(name=step.name, state=StepState.TIMED_OUT)
        launch = self.engine.launch(
            script=step.script,
            script_path=self.workspaces.root / "scripts" / f"{job.name}-{number}" / step.name,
            workspace=workspace,
            image=step.image,
            environment=environment,
            container_name=f"{self.container_prefix}-{job.name}-{number}-{step.name}",
        )

        def on_line(line: str) -> None:
            self.observer.step_output(job=job.name, step=step.name, line=self.masker.mask(line))

        outcome = run_process(
            launch,
            on_line=on_line,
            timeout_seconds=timeout,
            grace_seconds=self.options.grace_seconds,
            stop=self.stop,
        )
        seconds = time.monotonic() - started
        if outcome.end is ProcessEnd.TIMED_OUT:
            return StepResult(name=step.name, state=StepState.TIMED_OUT, seconds=seconds)
        if outcome.end is ProcessEnd.CANCELLED:
            return StepResult(name=step.name, state=StepState.CANCELLED, seconds=seconds)
        state = StepState.SUCCESS if outcome.succeeded else StepState.FAILURE
        return StepResult(
            name=step.name, state=state, exit_code=outcome.exit_code, seconds=seconds
        )


def _duration(seconds: float) -> str:
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"
