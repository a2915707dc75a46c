"""Step logs for the run and job pages, read through the read service (masked there).
Every function blocks (the archive, the API server): call it in a thread."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhooks.api.service import ReadService
from webhooks.web.logs import (
    LIVE,
    TAIL_LINES,
    Line,
    log_state,
    read_text,
    render_lines,
    split_lines,
)
from webhooks.web.views import UNFINISHED


@dataclass(frozen=True, slots=True, kw_only=True)
class StepLog:
    name: str
    state: str  # the step's conclusion
    log_state: str  # live, archived, lost, expired
    lines: list[Line]
    skipped_lines: int  # lines before the first shown (a page shows a long log's end)
    next_line: int  # the number a live tail's next line gets
    offset: int  # where a live tail goes on (bytes of the masked log, at a line start)
    lost: str | None
    truncated: bool
    failing: bool  # the step the job failed in: shown open, its failing line marked
    exit_code: int | None


def step_log(read: ReadService, run: Mapping[str, Any], job: Mapping[str, Any],
             step: Mapping[str, Any], *, failing: bool, tail: bool = False) -> StepLog:
    """One step's log as a page shows it; `tail`: only its last lines (the run page)."""
    running = step.get("state") in UNFINISHED and job.get("state") in UNFINISHED
    lost = step.get("lost")
    text = read_text(())
    if not lost:
        follower = read.step_log(str(run["namespace"]), str(run["repository"]),
                                 str(run["name"]), str(job["name"]), str(step["name"]),
                                 offset=0, follow=False)
        text = read_text(follower)
    archived_size = step.get("size") if step.get("archived") or step.get("truncated") else None
    if step.get("archived") and archived_size is None:
        archived_size = 0
    state = log_state(lost=lost, archived_size=archived_size, running=running,
                      empty=not text.text)
    shown = text.text
    if state == LIVE:  # whole lines only: the live tail goes on after the last
        shown = shown[:shown.rfind("\n") + 1]
    lines = render_lines(shown, first_number=text.skipped_lines + 1, failed=failing,
                         last=TAIL_LINES if tail else None)
    return StepLog(
        name=str(step["name"]), state=str(step.get("state", "")), log_state=state, lines=lines,
        skipped_lines=lines[0].number - 1 if lines else text.skipped_lines,
        next_line=text.skipped_lines + len(split_lines(shown)) + 1,
        offset=text.complete_offset if state == LIVE else text.offset,
        lost=str(lost) if lost else None, truncated=bool(step.get("truncated")),
        failing=failing, exit_code=step.get("exitCode"),
    )
