from __future__ import annotations

import io

from ci.local.outcomes import JobChange, JobResult, JobState, RunResult
from ci.local.reporting import Reporter, format_seconds, status_line
from ci.logs import Redactor
from ci.masking import Masker


def _reporter(*, interactive: bool = False) -> tuple[Reporter, io.StringIO]:
    stream = io.StringIO()
    return (
        Reporter(stream=stream, masker=Masker(["hunter2-value"]), interactive=interactive),
        stream,
    )


def test_output_is_prefixed_by_job_and_step_and_masked() -> None:
    reporter, stream = _reporter()
    reporter.step_output(job="test", step="unit", line="password=hunter2-value")
    assert stream.getvalue() == "test/unit | password=***\n"


def test_plain_output_has_no_status_line_or_escapes() -> None:
    reporter, stream = _reporter()
    reporter.job_changed(JobChange(job="a", state=JobState.QUEUED))
    reporter.job_changed(JobChange(job="a", state=JobState.RUNNING, attempt=1))
    assert stream.getvalue() == "==> a: running\n"


def test_a_terminal_gets_a_status_line_redrawn_below_the_output() -> None:
    reporter, stream = _reporter(interactive=True)
    reporter.job_changed(JobChange(job="a", state=JobState.QUEUED))
    reporter.job_changed(JobChange(job="b", state=JobState.QUEUED))
    reporter.job_changed(JobChange(job="a", state=JobState.RUNNING, attempt=1))
    reporter.step_output(job="a", step="s", line="hello")
    text = stream.getvalue()
    assert text.endswith("a/s | hello\njobs: 1 waiting, 1 running")
    assert "\r\x1b[K" in text


def test_the_summary_is_a_table_with_a_verdict_and_masks_reasons() -> None:
    reporter, stream = _reporter()
    reporter.summary(
        RunResult(
            jobs=(
                JobResult(name="lint", state=JobState.SUCCESS, attempts=1, seconds=1.25),
                JobResult(name="test", state=JobState.FAILURE, attempts=2, seconds=75,
                          reason="step `run-1` exited with code 1 (hunter2-value)"),
                JobResult(name="docs", state=JobState.FAILURE, attempts=1, allow_failure=True),
                JobResult(name="deploy", state=JobState.SKIPPED, reason="it needs `test`"),
                JobResult(name="notify", state=JobState.SUCCESS, attempts=1, is_finally=True),
            ),
            seconds=80,
        )
    )
    lines = stream.getvalue().splitlines()
    assert lines[1].split() == ["JOB", "RESULT", "TRIES", "TIME"]
    assert lines[2].split() == ["lint", "passed", "1", "1.2s"]
    assert lines[3].split()[:4] == ["test", "failed", "2", "1m15s"]
    assert lines[3].endswith("exited with code 1 (***)")
    assert lines[4].split()[:3] == ["docs", "failed", "(allowed)"]
    assert lines[5].split()[:4] == ["deploy", "skipped", "-", "-"]
    assert lines[6].split()[:2] == ["notify", "(finally)"]
    assert lines[-1] == "FAILED in 1m20s (2 passed, 2 failed, 1 skipped): test"


def test_status_line_counts_in_a_fixed_order() -> None:
    states = [JobState.SUCCESS, JobState.QUEUED, JobState.SUCCESS, JobState.TIMED_OUT]
    assert status_line(states) == "jobs: 1 waiting, 2 passed, 1 timed out"


def test_format_seconds() -> None:
    assert format_seconds(0.04) == "0.0s"
    assert format_seconds(59.94) == "59.9s"
    assert format_seconds(3600) == "60m00s"


def test_masking_follows_the_rule_of_ferrys_logs() -> None:
    secrets = ["abc", "hunter2", "hunter2-long", "s3cret"]
    text = "abc hunter2-long hunter2 s3cret on"
    assert Masker(secrets).mask(text) == Redactor(secrets).mask(text) == "abc *** *** *** on"
