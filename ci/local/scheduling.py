"""The order jobs run in: the plan's DAG, as many at once as allowed, finally jobs last.

The rules are Tekton's, so that a spec ends the same way on a laptop and on the cluster:

- A job starts when every job it needs has ended well: passed, or failed while allowed to
  (`allow_failure` is `onError: continue`). A job needing one that failed, timed out or
  was skipped is skipped, and so on down the DAG.
- Once a required job has failed, no new job starts: jobs whose needs end later are
  skipped ("the run is stopping"), jobs already running finish. Tekton stops a
  PipelineRun the same way. Jobs that were ready before the failure still run even when
  they wait for a slot: on the cluster they would have started at once.
- Finally jobs start together after every regular job has ended, whatever happened,
  unless the run was cancelled.
- At most `parallel` jobs run at once (finally jobs included).
- `stop` cancels the run: running jobs are cancelled (their processes stopped by
  `executing`), waiting and finally jobs end as CANCELLED without starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from ci.local.outcomes import JobChange, JobResult, JobState
from pipelines.planning import Plan, PlannedJob

RunJob = Callable[[PlannedJob], Awaitable[JobResult]]
Report = Callable[[JobChange], None]

_ENDED_WELL = (JobState.SUCCESS,)
_ALLOWED_TO_FAIL = (JobState.FAILURE, JobState.TIMED_OUT)


def ended_well(result: JobResult) -> bool:
    """Can jobs that need this one start? (Tekton's `onError: continue` for allowed failures.)"""
    if result.state in _ENDED_WELL:
        return True
    return result.allow_failure and result.state in _ALLOWED_TO_FAIL


class _Scheduler:
    def __init__(self, *, run_job: RunJob, report: Report, parallel: int, stop: asyncio.Event):
        self.run_job = run_job
        self.report = report
        self.slots = asyncio.Semaphore(max(1, parallel))
        self.stop = stop
        self.results: dict[str, JobResult] = {}
        self.ended: dict[str, asyncio.Event] = {}
        self.stopping_after: str | None = None  # the first required job that failed

    async def run(self, plan: Plan) -> tuple[JobResult, ...]:
        for job in plan.all_jobs:
            self.ended[job.name] = asyncio.Event()
            self.report(JobChange(job=job.name, state=JobState.QUEUED))
        await self._run_all(plan.jobs)
        await self._run_all(plan.finally_jobs)
        return tuple(self.results[job.name] for job in plan.all_jobs)

    async def _run_all(self, jobs: tuple[PlannedJob, ...]) -> None:
        if not jobs:
            return
        tasks = [asyncio.create_task(self._flow(job), name=job.name) for job in jobs]
        watcher = asyncio.create_task(self._cancel_on_stop(tasks))
        try:
            await asyncio.wait(tasks)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            for task in tasks:  # only left running when the caller itself was cancelled
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for job in jobs:
            # A task cancelled before its first step never entered `_flow`'s handler.
            if job.name not in self.results:
                self._end(job, self._cancelled(job, started=None))

    async def _cancel_on_stop(self, tasks: list[asyncio.Task[None]]) -> None:
        await self.stop.wait()
        for task in tasks:
            task.cancel()

    async def _flow(self, job: PlannedJob) -> None:
        started: float | None = None
        try:
            for need in job.needs:
                await self.ended[need].wait()
            if self.stop.is_set():  # the need ended because the run is being cancelled
                raise asyncio.CancelledError
            reason = self._reason_to_skip(job)
            if reason is not None:
                self._end(job, JobResult(name=job.name, state=JobState.SKIPPED, reason=reason,
                                         allow_failure=job.allow_failure,
                                         is_finally=job.is_finally))
                return
            async with self.slots:
                if self.stop.is_set():
                    raise asyncio.CancelledError
                started = time.monotonic()
                result = await self.run_job(job)
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise  # the caller cancelled us: not ours to swallow
            result = self._cancelled(job, started=started)
        if not ended_well(result) and not result.allow_failure and not job.is_finally:
            self.stopping_after = self.stopping_after or job.name
        self._end(job, result)

    @staticmethod
    def _cancelled(job: PlannedJob, *, started: float | None) -> JobResult:
        return JobResult(
            name=job.name,
            state=JobState.CANCELLED,
            reason="cancelled before it started" if started is None else "cancelled",
            allow_failure=job.allow_failure,
            is_finally=job.is_finally,
            attempts=0 if started is None else 1,
            seconds=0.0 if started is None else time.monotonic() - started,
        )

    def _reason_to_skip(self, job: PlannedJob) -> str | None:
        for need in job.needs:
            result = self.results[need]
            if not ended_well(result):
                return f"it needs `{need}`, which {result.state.phrase}"
        if self.stopping_after is not None and not job.is_finally:
            return f"the run is stopping: `{self.stopping_after}` failed"
        return None

    def _end(self, job: PlannedJob, result: JobResult) -> None:
        self.results[job.name] = result
        self.report(JobChange(job=job.name, state=result.state, attempt=result.attempts,
                              result=result))
        self.ended[job.name].set()


async def schedule(
    plan: Plan,
    *,
    run_job: RunJob,
    report: Report,
    parallel: int,
    stop: asyncio.Event,
) -> tuple[JobResult, ...]:
    """Run every job of `plan` with `run_job` (see the module docstring); results in plan order.

    `run_job` reports RUNNING itself (once per attempt); this reports QUEUED for every job
    at the start and each job's final state.
    """
    return await _Scheduler(run_job=run_job, report=report, parallel=parallel, stop=stop).run(plan)
