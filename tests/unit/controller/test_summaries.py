"""What the forge shows: titles, job table, log tails, details URL."""

from __future__ import annotations

import pytest

from ci.controller.reporting import Memory, ReportMode, plan
from ci.controller.runs import RunSnapshot, TaskRunSnapshot, observe
from ci.controller.summaries import (
    Presentation,
    check_details_url_template,
    format_duration,
    render,
    web_page_templates,
)
from ci.forges.statuses import Conclusion
from ci.kube import labels
from tests.unit.controller.builders import pipeline_run, task_run

TEMPLATE = "https://dashboard.example/#/namespaces/{namespace}/pipelineruns/{name}"


def test_failed_run_summary_lists_jobs_and_shows_the_failing_log() -> None:
    run = pipeline_run(condition=("False", "Failed"), completion="2024-05-01T10:01:30Z")
    failing = task_run(task="build", condition=("False", "StepFailed"), exit_codes=(0, 2),
                       completion="2024-05-01T10:00:31Z")
    state = observe(RunSnapshot.of(run), [TaskRunSnapshot.of(failing)])
    reports = plan(state, Memory(), mode=ReportMode.CHECK_RUNS)
    presentation = Presentation(details_url_template=TEMPLATE)
    tails = {"build": "make: *** [test] Error 2"}
    statuses = {r.key: render(r, state, presentation=presentation, log_tails=tails)
                for r in reports}
    pipeline = statuses["run"]
    assert pipeline.conclusion is Conclusion.FAILURE
    assert pipeline.context == "ferry"
    assert pipeline.title == "Failed in 1m 30s: build"
    assert "| `build` | Failed | 30s |" in pipeline.summary
    assert "| `test` | Skipped | - |" in pipeline.summary
    assert "make: *** [test] Error 2" in pipeline.text
    assert pipeline.details_url == (
        "https://dashboard.example/#/namespaces/team/pipelineruns/widget-abc")
    job = statuses["job/build"]
    assert job.context == "ferry/build"
    assert "Last lines of step `s1`" in job.text
    assert statuses["job/test"].text == ""


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (0.4, "0s"), (75, "1m 15s"),
                                                (3720, "1h 2m")])
def test_durations(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_details_url_template_is_checked_at_startup() -> None:
    check_details_url_template(TEMPLATE)
    with pytest.raises(ValueError, match="pipeline_run"):
        check_details_url_template("https://x/{pipeline_run}")


def test_the_receivers_note_is_in_the_run_title_from_queued_to_the_verdict() -> None:
    note = "pull request from a fork and mallory has no write access: running without secrets"
    for condition, title in [(None, "Queued"), (("True", "Succeeded"), "Succeeded in 1m 30s")]:
        run = pipeline_run(condition=condition, completion="2024-05-01T10:01:30Z")
        run["metadata"]["annotations"][labels.NOTE] = note
        state = observe(RunSnapshot.of(run), [])
        [report, *_] = plan(state, Memory(), mode=ReportMode.COMMIT_STATUS)
        status = render(report, state, presentation=Presentation(), log_tails={})
        assert status.title == f"{title} ({note})"


def test_with_a_public_url_statuses_link_to_the_run_and_job_pages() -> None:
    run = pipeline_run(condition=("False", "Failed"), completion="2024-05-01T10:01:30Z")
    run["metadata"]["labels"] = {"ferry.dev/repository-object": "widget"}
    failing = task_run(task="build", condition=("False", "StepFailed"), exit_codes=(0, 2),
                       completion="2024-05-01T10:00:31Z")
    state = observe(RunSnapshot.of(run), [TaskRunSnapshot.of(failing)])
    run_page, job_page = web_page_templates("https://ferry.example/{odd}/")
    presentation = Presentation(details_url_template=run_page, job_details_url_template=job_page)
    reports = plan(state, Memory(), mode=ReportMode.CHECK_RUNS)
    links = {r.key: render(r, state, presentation=presentation, log_tails={}).details_url
             for r in reports}
    assert links["run"] == "https://ferry.example/{odd}/ui/team/widget/runs/widget-abc"
    assert links["job/build"] == (
        "https://ferry.example/{odd}/ui/team/widget/runs/widget-abc/jobs/build")
    check_details_url_template(run_page)
    check_details_url_template(job_page)
    check_details_url_template("https://x/{namespace}/{name}?job={job}")
