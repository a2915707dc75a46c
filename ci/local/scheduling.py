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
- `stop` cancels the run: waiting and finally jobs end as CANCELLED without starting;
  running jobs are `run_job`'s to end (the runner stops their processes, `executing`).

Each job runs in a thread of its own; the caller's thread decides what starts, waking when
a job ends or `stop` is set, and makes every report but a job's RUNNING.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from ci.local.outcomes import JobChange, JobResult, JobState
from ci.local.stopping import Stop
from pipelines.planning import Plan, PlannedJob

RunJob = Callable[[PlannedJob], JobResult]  # called in the job's thread
Report = Callable[[JobChange], None]

_ENDED_WELL = (JobState.SUCCESS,)
_ALLOWED_TO_FAIL = (JobState.FAILURE, JobState.TIMED_OUT)

# What a job's thread hands back: the job and its result; None: `stop` was set.
_Ended = tuple[PlannedJob, JobResult] | None


def ended_well(result: JobResult) -> bool:
    """Can jobs that need this one start? (Tekton's `onError: continue` for allowed failures.)"""
    if result.state in _ENDED_WELL:
        return True
    return result.allow_failure and result.state in _ALLOWED_TO_FAIL


class _Scheduler:
    def __init__(self, *, run_job: RunJob, report: Report, parallel: int, stop: Stop):
        self.run_job = run_job
        self.report = report
        self.slots = max(1, parallel)
        self.stop = stop
        self.results: dict[str, JobResult] = {}
        self.stopping_after: str | None = None  # the first required job that failed

    def run(self, plan: Plan) -> tuple[JobResult, ...]:
        for job in plan.all_jobs:
            self.report(JobChange(job=job.name, state=JobState.QUEUED))
        self._run_all(plan.jobs)
        self._run_all(plan.finally_jobs)
        return tuple(self.results[job.name] for job in plan.all_jobs)

    def _run_all(self, jobs: tuple[PlannedJob, ...]) -> None:
        if not jobs:
            return
        ended: queue.SimpleQueue[_Ended] = queue.SimpleQueue()
        waiting = list(jobs)  # for their needs to end
        ready: list[PlannedJob] = []  # may start: waiting for a slot
        running = 0
        with self.stop.listening(lambda: ended.put(None)):
            while True:
                if self.stop.is_set():
                    for job in waiting + ready:
                        self._end(job, self._cancelled_before_start(job))
                    waiting, ready = [], []
                else:
                    waiting = self._advance(waiting, ready)
                    while ready and running < self.slots:
                        self._start(ready.pop(0), ended)
                        running += 1
                if not running:
                    break
                item = ended.get()
                if item is not None:
                    running -= 1
                    self._job_ended(*item)
        for job in waiting:  # needs no job of the plan meets: planning never makes them
            self._end(job, self._skipped(job, "it needs a job that never ran"))

    def _advance(self, waiting: list[PlannedJob], ready: list[PlannedJob]) -> list[PlannedJob]:
        """Jobs whose needs have all ended are skipped or made ready, in plan order; a skip
        can end what others need, so until nothing changes. Returns those still waiting."""
        changed = True
        while changed:
            changed = False
            still: list[PlannedJob] = []
            for job in waiting:
                if any(need not in self.results for need in job.needs):
                    still.append(job)
                    continue
                changed = True
                reason = self._reason_to_skip(job)
                if reason is None:
                    ready.append(job)
                else:
                    self._end(job, self._skipped(job, reason))
            waiting = still
        return waiting

    def _start(self, job: PlannedJob, ended: queue.SimpleQueue[_Ended]) -> None:
        threading.Thread(target=self._flow, args=(job, ended), daemon=True,
                         name=f"ferry-job-{job.name}").start()

    def _flow(self, job: PlannedJob, ended: queue.SimpleQueue[_Ended]) -> None:
        started = time.monotonic()
        result: JobResult | None = None
        try:
            result = self.run_job(job)
        except Exception as error:  # a bug or a broken workspace: the run goes on
            result = JobResult(
                name=job.name, state=JobState.FAILURE, allow_failure=job.allow_failure,
                is_finally=job.is_finally, attempts=1, seconds=time.monotonic() - started,
                reason=f"Ferry failed to run it: {type(error).__name__}: {error}",
            )
        finally:
            # Always handed back, or the run would wait for this job for ever.
            ended.put((job, result or self._cancelled_before_start(job)))

    def _job_ended(self, job: PlannedJob, result: JobResult) -> None:
        if not ended_well(result) and not result.allow_failure and not job.is_finally:
            self.stopping_after = self.stopping_after or job.name
        self._end(job, result)

    @staticmethod
    def _cancelled_before_start(job: PlannedJob) -> JobResult:
        return JobResult(
            name=job.name,
            state=JobState.CANCELLED,
            reason="cancelled before it started",
            allow_failure=job.allow_failure,
            is_finally=job.is_finally,
        )

    @staticmethod
    def _skipped(job: PlannedJob, reason: str) -> JobResult:
        return JobResult(name=job.name, state=JobState.SKIPPED, reason=reason,
                         allow_failure=job.allow_failure, is_finally=job.is_finally)

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


def schedule(
    plan: Plan,
    *,
    run_job: RunJob,
    report: Report,
    parallel: int,
    stop: Stop,
) -> tuple[JobResult, ...]:
    """Run every job of `plan` with `run_job` (see the module docstring); results in plan order.

    `run_job` reports RUNNING itself (once per attempt); this reports QUEUED for every job
    at the start and each job's final state. Returns when every job has ended.
    """
    return _Scheduler(run_job=run_job, report=report, parallel=parallel, stop=stop).run(plan)
