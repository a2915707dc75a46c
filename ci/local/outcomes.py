"""What a local run reports: job states, per-job and per-run results, and the observer contract.

States follow a job's life: QUEUED (waiting for its needs or a free slot), RUNNING (once per
attempt), then exactly one final state. Only the final states carry a `JobResult`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from msgspec import Struct


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_final(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)

    @property
    def phrase(self) -> str:
        """For sentences: "`test` failed", "`lint` was skipped"."""
        return _PHRASES[self]


_PHRASES = {
    JobState.QUEUED: "is waiting",
    JobState.RUNNING: "is running",
    JobState.SUCCESS: "passed",
    JobState.FAILURE: "failed",
    JobState.SKIPPED: "was skipped",
    JobState.CANCELLED: "was cancelled",
    JobState.TIMED_OUT: "timed out",
}


class StepState(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    NOT_RUN = "not_run"  # an earlier step of the same attempt failed


class StepResult(Struct, frozen=True, kw_only=True):
    name: str
    state: StepState
    exit_code: int | None = None  # None when the step was killed or never started
    seconds: float = 0.0


class JobResult(Struct, frozen=True, kw_only=True):
    name: str
    state: JobState
    allow_failure: bool = False
    is_finally: bool = False
    attempts: int = 0  # 0 for a job that never ran
    seconds: float = 0.0  # wall time of all attempts, waiting excluded
    reason: str = ""  # for people: why it failed, was skipped or cancelled
    steps: tuple[StepResult, ...] = ()  # of the last attempt

    @property
    def blocks_run(self) -> bool:
        """Does this job make the run fail? Skipped jobs never do; allowed failures neither."""
        failed = self.state in (JobState.FAILURE, JobState.TIMED_OUT, JobState.CANCELLED)
        return failed and not self.allow_failure


class RunResult(Struct, frozen=True, kw_only=True):
    jobs: tuple[JobResult, ...]  # plan order: regular jobs, then finally jobs
    cancelled: bool = False  # stopped from outside (Ctrl-C, a newer run)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when every required job passed (the exit code 0 of `ferry run`)."""
        return not self.cancelled and not any(job.blocks_run for job in self.jobs)


class JobChange(Struct, frozen=True, kw_only=True):
    """One state change of one job, as the observer receives it."""

    job: str
    state: JobState
    attempt: int = 0  # 1-based for RUNNING; the last attempt for final states
    result: JobResult | None = None  # set for final states only


class Observer(Protocol):
    """Receives a run's progress. Called from the run's threads, one call at a time
    (`run_plan` sees to that); must not block for long: steps wait for it.

    Output lines arrive with secrets already masked and without their line ending.
    """

    def job_changed(self, change: JobChange) -> None: ...

    def step_output(self, *, job: str, step: str, line: str) -> None: ...
