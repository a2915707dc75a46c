"""What `ferry run` prints: live step output, job progress, and a summary table.

Every line goes through the run's `Masker` on its way out, whatever produced it, so a
secret a step prints, or one that ends up in a reason, is masked.

On a terminal a status line (jobs waiting, running, passed, failed) stays at the bottom and
is redrawn after each line of output; elsewhere (CI logs, pipes, files) there is no status
line and each job change is a plain line of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from ci.local.outcomes import JobChange, JobResult, JobState, RunResult
from ci.masking import Masker

_CLEAR_LINE = "\r\x1b[K"
_LABELS = {
    JobState.QUEUED: "waiting",
    JobState.RUNNING: "running",
    JobState.SUCCESS: "passed",
    JobState.FAILURE: "failed",
    JobState.SKIPPED: "skipped",
    JobState.CANCELLED: "cancelled",
    JobState.TIMED_OUT: "timed out",
}


class Reporter:
    """An `Observer` that writes to a stream, and prints the summary at the end."""

    def __init__(self, *, stream: TextIO, masker: Masker, interactive: bool) -> None:
        self.stream = stream
        self.masker = masker
        self.interactive = interactive
        self.states: dict[str, JobState] = {}
        self.retries: dict[str, int] = {}
        self._status_shown = False

    # The Observer protocol.

    def job_changed(self, change: JobChange) -> None:
        self.states[change.job] = change.state
        if change.state is JobState.RUNNING:
            again = f" (attempt {change.attempt})" if change.attempt > 1 else ""
            self._line(f"==> {change.job}: running{again}")
        elif change.result is not None:
            self._line(f"==> {change.job}: {_describe(change.result)}")
        else:
            self._redraw()

    def step_output(self, *, job: str, step: str, line: str) -> None:
        self._line(f"{job}/{step} | {line}")

    # The rest.

    def note(self, text: str) -> None:
        self._line(f"note: {text}")

    def warning(self, text: str) -> None:
        self._line(f"warning: {text}")

    def summary(self, result: RunResult) -> None:
        self._clear_status()
        rows = [("JOB", "RESULT", "TRIES", "TIME", "")]
        rows += [_row(job) for job in result.jobs]
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        self._write("")
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self._write("  ".join([*cells, row[4]]).rstrip())
        self._write("")
        self._write(_verdict(result))

    def _line(self, text: str) -> None:
        self._clear_status()
        self._write(text)
        self._redraw()

    def _write(self, text: str) -> None:
        self.stream.write(self.masker.mask(text) + "\n")
        self.stream.flush()

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stream.write(_CLEAR_LINE)
            self._status_shown = False

    def _redraw(self) -> None:
        if not self.interactive or not self.states:
            return
        self._clear_status()
        self.stream.write(status_line(self.states.values()))
        self.stream.flush()
        self._status_shown = True


def status_line(states: Iterable[JobState]) -> str:
    """`jobs: 1 waiting, 2 running, 3 passed, 1 failed` (states with no job left out)."""
    counts: dict[str, int] = {}
    for state in states:
        label = _LABELS[state]
        counts[label] = counts.get(label, 0) + 1
    order = [label for label in _LABELS.values() if label in counts]
    return "jobs: " + ", ".join(f"{counts[label]} {label}" for label in order)


def _describe(result: JobResult) -> str:
    text = _LABELS[result.state]
    if result.allow_failure and result.state in (JobState.FAILURE, JobState.TIMED_OUT):
        text += " (allowed to fail)"
    if result.attempts:
        text += f" in {format_seconds(result.seconds)}"
    if result.reason:
        text += f": {result.reason}"
    return text


def _row(job: JobResult) -> tuple[str, str, str, str, str]:
    label = _LABELS[job.state]
    if job.allow_failure and job.state in (JobState.FAILURE, JobState.TIMED_OUT):
        label += " (allowed)"
    name = f"{job.name} (finally)" if job.is_finally else job.name
    tries = str(job.attempts) if job.attempts else "-"
    time = format_seconds(job.seconds) if job.attempts else "-"
    return name, label, tries, time, job.reason


def _verdict(result: RunResult) -> str:
    took = format_seconds(result.seconds)
    counts = status_line(job.state for job in result.jobs).removeprefix("jobs: ")
    if result.cancelled:
        return f"CANCELLED after {took} ({counts})"
    failed = [job.name for job in result.jobs if job.blocks_run]
    if failed:
        return f"FAILED in {took} ({counts}): " + ", ".join(failed)
    return f"PASSED in {took} ({counts})"


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"
