"""Planning reports from run state and memory; the memory's annotation round trip."""

from __future__ import annotations

import pytest

from ci.controller.reporting import (
    RUN_REPORT,
    Memory,
    job_key,
    newest,
    plan,
)
from ci.controller.runs import RunSnapshot, TaskRunSnapshot, observe
from ci.forges.statuses import Conclusion
from ci.forges.types import ReportId
from tests.unit.controller.builders import pipeline_run, task_run

ME, OTHER = "incarnation-a", "incarnation-b"


def _state(run: dict, *task_runs: dict):  # type: ignore[no-untyped-def]
    return observe(RunSnapshot.of(run), [TaskRunSnapshot.of(t) for t in task_runs])


def test_a_new_run_is_queued_with_every_job_queued() -> None:
    state = _state(pipeline_run())
    assert state.conclusion is Conclusion.QUEUED
    assert [(job.name, job.conclusion) for job in state.jobs] == [
        ("build", Conclusion.QUEUED), ("test", Conclusion.QUEUED)]


def test_a_new_run_reports_every_job_then_the_pipeline_queued() -> None:
    """Commit statuses too (token mode, Gitea, GitLab): a check per job, as the local
    backend posts, so a branch protection rule can require one job."""
    reports = plan(_state(pipeline_run()), Memory())
    assert [(r.key, r.conclusion) for r in reports] == [
        ("job/build", Conclusion.QUEUED), ("job/test", Conclusion.QUEUED),
        (RUN_REPORT, Conclusion.QUEUED)]


def test_jobs_are_reported_then_the_pipeline() -> None:
    state = _state(pipeline_run(condition=("Unknown", "Running")), task_run(task="build"))
    reports = plan(state, Memory())
    assert [(r.key, r.conclusion) for r in reports] == [
        ("job/build", Conclusion.RUNNING),
        ("job/test", Conclusion.QUEUED),
        (RUN_REPORT, Conclusion.RUNNING),
    ]


def test_acknowledged_reports_are_not_repeated_and_ids_are_reused() -> None:
    state = _state(pipeline_run(condition=("Unknown", "Running")), task_run(task="build"))
    memory = Memory()
    for key, conclusion in [("job/build", Conclusion.QUEUED), ("job/test", Conclusion.QUEUED),
                            (RUN_REPORT, Conclusion.RUNNING)]:
        memory = memory.with_acknowledged(key, conclusion, report_id=ReportId(f"id-{key}"))
    reports = plan(state, memory)
    assert [(r.key, r.conclusion, r.report_id) for r in reports] == [
        ("job/build", Conclusion.RUNNING, "id-job/build")]


def test_reports_never_move_backwards_and_final_is_final() -> None:
    memory = Memory().with_acknowledged(RUN_REPORT, Conclusion.RUNNING, report_id=None)
    queued = _state(pipeline_run(jobs=()))
    assert plan(queued, memory) == ()
    memory = memory.with_acknowledged(RUN_REPORT, Conclusion.FAILURE, report_id=None)
    succeeded = _state(pipeline_run(condition=("True", "Succeeded"), jobs=()))
    assert plan(succeeded, memory) == ()


def test_a_final_run_leaves_no_job_in_progress() -> None:
    run = pipeline_run(condition=("False", "Cancelled"), jobs=("build", "test", "lint"),
                       skipped=("lint",))
    state = _state(run, task_run(task="build", condition=("Unknown", "Running")))
    assert [(job.name, job.conclusion) for job in state.jobs] == [
        ("build", Conclusion.CANCELLED), ("test", Conclusion.CANCELLED),
        ("lint", Conclusion.SKIPPED)]


def test_a_failed_run_skips_jobs_that_never_started() -> None:
    state = _state(pipeline_run(condition=("False", "Failed")),
                   task_run(task="build", condition=("False", "StepFailed"), exit_codes=(0, 3)))
    assert [(job.name, job.conclusion) for job in state.jobs] == [
        ("build", Conclusion.FAILURE), ("test", Conclusion.SKIPPED)]
    failing = state.jobs[0].task_run
    assert failing is not None
    assert failing.failing_step is not None
    assert failing.failing_step.container == "step-s1"


def test_nothing_is_left_to_send_only_once_every_final_report_was_acknowledged() -> None:
    state = _state(pipeline_run(condition=("True", "Succeeded"), jobs=("build",)),
                   task_run(task="build", condition=("True", "Succeeded")))
    memory = Memory().with_acknowledged(RUN_REPORT, Conclusion.SUCCESS, report_id=None)
    # The job's own report is owed in every mode, statuses as well as check runs.
    assert [report.key for report in plan(state, memory)] == [job_key("build")]
    memory = memory.with_acknowledged(job_key("build"), Conclusion.SUCCESS, report_id=None)
    assert plan(state, memory) == ()


def test_memory_round_trips_through_the_annotation() -> None:
    memory = (
        Memory()
        .with_acknowledged("job/build", Conclusion.RUNNING, report_id=ReportId("1001"))
        .with_acknowledged(RUN_REPORT, Conclusion.FAILURE, report_id=None, rejected=True)
    )
    state = _state(pipeline_run(condition=("Unknown", "Running")), task_run(task="build",
                   condition=("True", "Succeeded")))
    memory = memory.with_sending(plan(state, memory), incarnation=ME)
    again = Memory.loads(memory.dumps())
    assert again == memory
    assert again.report_id("job/build") == "1001"
    assert again.acknowledged[RUN_REPORT].rejected


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"ack": {"run": ["bogus", null]}}'])
def test_an_unreadable_memory_means_nothing_was_reported(text: str) -> None:
    assert Memory.loads(text) == Memory()


def test_a_report_another_process_was_sending_is_recorded_as_a_doubt() -> None:
    state = _state(pipeline_run(condition=("True", "Succeeded"), jobs=()))
    reports = plan(state, Memory())
    theirs = Memory().with_sending(reports, incarnation=OTHER)
    # This process retrying its own attempt is not a doubt; a restart finding theirs is.
    assert Memory().with_sending(reports, incarnation=ME).with_sending(
        reports, incarnation=ME).doubts == ()
    assert theirs.with_sending(reports, incarnation=ME).doubts == ("run=success",)
    # Read back and absent from the forge: sending it is no repeat.
    checked = theirs.with_sending(reports, incarnation=ME, absent={RUN_REPORT})
    assert checked.doubts == ()
    assert checked.sending[RUN_REPORT].incarnation == ME


def test_newest_memory_wins() -> None:
    older = Memory().with_acknowledged(RUN_REPORT, Conclusion.QUEUED, report_id=None)
    newer = older.with_acknowledged(RUN_REPORT, Conclusion.RUNNING, report_id=None)
    assert newest(older, None, newer) is newer
    assert newest(None) == Memory()
