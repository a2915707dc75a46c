"""The DAG rules of `ci.local.scheduling`, with fake jobs: no processes, no clocks."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

import pytest

from ci.local.outcomes import JobChange, JobResult, JobState
from ci.local.scheduling import schedule
from ci.local.stopping import Stop
from pipelines.planning import Plan, PlannedJob


def _job(
    name: str, *needs: str, allow_failure: bool = False, is_finally: bool = False
) -> PlannedJob:
    return PlannedJob(
        name=name,
        spec_job=name,
        matrix={},
        image="alpine",
        steps=(),
        env={},
        needs=needs,
        allow_failure=allow_failure,
        is_finally=is_finally,
    )


def _plan(jobs: Iterable[PlannedJob], finally_jobs: Iterable[PlannedJob] = ()) -> Plan:
    return Plan(jobs=tuple(jobs), finally_jobs=tuple(finally_jobs))


class _Fake:
    """Ends each job in the state given (SUCCESS by default) and records the order.

    With `together`, each job waits until that many run at once (a barrier): the scheduler
    must start them together, or the barrier breaks and the job fails.
    """

    def __init__(self, states: Mapping[str, JobState] | None = None, *,
                 together: int = 1) -> None:
        self.states = dict(states or {})
        self.started: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self.changes: list[JobChange] = []
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(together, timeout=30)

    def run_job(self, job: PlannedJob) -> JobResult:
        with self.lock:
            self.started.append(job.name)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.barrier.wait()
        with self.lock:
            self.running -= 1
        return JobResult(
            name=job.name,
            state=self.states.get(job.name, JobState.SUCCESS),
            allow_failure=job.allow_failure,
            is_finally=job.is_finally,
            attempts=1,
        )

    def report(self, change: JobChange) -> None:
        self.changes.append(change)


def _run(plan: Plan, fake: _Fake, *, parallel: int = 4) -> dict[str, JobResult]:
    results = schedule(plan, run_job=fake.run_job, report=fake.report, parallel=parallel,
                       stop=Stop())
    return {result.name: result for result in results}


def test_jobs_start_after_their_needs_and_results_keep_plan_order() -> None:
    fake = _Fake()
    plan = _plan([_job("a"), _job("b", "a"), _job("c", "b")], [_job("z", is_finally=True)])
    results = _run(plan, fake)
    assert fake.started == ["a", "b", "c", "z"]
    assert list(results) == ["a", "b", "c", "z"]
    assert all(result.state is JobState.SUCCESS for result in results.values())


def test_every_job_is_reported_queued_first_then_exactly_one_final_state() -> None:
    fake = _Fake()
    _run(_plan([_job("a"), _job("b", "a")]), fake)
    assert [(c.job, c.state) for c in fake.changes[:2]] == [
        ("a", JobState.QUEUED),
        ("b", JobState.QUEUED),
    ]
    finals = [c for c in fake.changes if c.state.is_final]
    assert [c.job for c in finals] == ["a", "b"]
    assert all(c.result is not None for c in finals)


def test_a_failed_need_skips_dependents_transitively_and_finally_still_runs() -> None:
    fake = _Fake({"a": JobState.FAILURE})
    plan = _plan([_job("a"), _job("b", "a"), _job("c", "b")], [_job("z", is_finally=True)])
    results = _run(plan, fake)
    assert results["b"].state is JobState.SKIPPED
    assert results["b"].reason == "it needs `a`, which failed"
    assert results["c"].reason == "it needs `b`, which was skipped"
    assert results["z"].state is JobState.SUCCESS
    assert fake.started == ["a", "z"]


def test_an_allowed_failure_lets_dependents_run() -> None:
    fake = _Fake({"a": JobState.TIMED_OUT})
    results = _run(_plan([_job("a", allow_failure=True), _job("b", "a")]), fake)
    assert results["b"].state is JobState.SUCCESS
    assert not results["a"].blocks_run


def test_after_a_required_failure_no_new_job_starts_as_on_tekton() -> None:
    # `late` becomes ready only after `a` failed; `ready` was ready from the start.
    fake = _Fake({"a": JobState.FAILURE})
    plan = _plan([_job("a"), _job("ready"), _job("slow"), _job("late", "slow", "a")])
    results = _run(plan, fake, parallel=1)
    assert results["ready"].state is JobState.SUCCESS
    assert results["late"].state is JobState.SKIPPED


def test_jobs_ready_when_a_failure_happens_still_run_but_later_ones_do_not() -> None:
    fake = _Fake({"a": JobState.FAILURE})
    results = _run(_plan([_job("a"), _job("b"), _job("c", "b")]), fake, parallel=1)
    assert results["b"].state is JobState.SUCCESS
    assert results["c"].state is JobState.SKIPPED
    assert results["c"].reason == "the run is stopping: `a` failed"


@pytest.mark.parametrize("parallel", [1, 2, 3])
def test_as_many_jobs_run_at_once_as_allowed_and_no_more(parallel: int) -> None:
    fake = _Fake(together=parallel)
    results = _run(_plan([_job(name) for name in "abcdef"]), fake, parallel=parallel)
    assert all(result.state is JobState.SUCCESS for result in results.values())
    assert fake.most_at_once == parallel


def test_stop_waits_for_running_jobs_and_cancels_waiting_and_finally_jobs() -> None:
    stop = Stop()
    started = threading.Event()
    stopped = threading.Event()

    def run_job(job: PlannedJob) -> JobResult:
        started.set()
        with stop.listening(stopped.set):  # as the runner's steps do
            stopped.wait()
        return JobResult(name=job.name, state=JobState.CANCELLED, reason="cancelled",
                         attempts=1)

    def press_ctrl_c() -> None:
        started.wait()
        stop.set()

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    plan = _plan([_job("a"), _job("b", "a"), _job("c")], [_job("z", is_finally=True)])
    results = {result.name: result for result in schedule(
        plan, run_job=run_job, report=lambda change: None, parallel=1, stop=stop)}
    presser.join()
    assert results["a"].reason == "cancelled"  # what its own run said
    for waiting in ("b", "c", "z"):  # for its need, for a slot, for the regular jobs
        assert results[waiting].state is JobState.CANCELLED
        assert results[waiting].reason == "cancelled before it started"


def test_a_job_that_raises_fails_with_the_error_and_the_run_goes_on() -> None:
    def run_job(job: PlannedJob) -> JobResult:
        if job.name == "a":
            raise OSError("No space left on device")
        return JobResult(name=job.name, state=JobState.SUCCESS, attempts=1)

    plan = _plan([_job("a"), _job("b", "a")], [_job("z", is_finally=True)])
    results = {result.name: result for result in schedule(
        plan, run_job=run_job, report=lambda change: None, parallel=2, stop=Stop())}
    assert results["a"].state is JobState.FAILURE
    assert results["a"].reason == "Ferry failed to run it: OSError: No space left on device"
    assert results["b"].state is JobState.SKIPPED
    assert results["z"].state is JobState.SUCCESS
