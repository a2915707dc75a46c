"""The forge-neutral status of a run, which each provider maps to its own states."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Conclusion(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"  # GitLab spells it "canceled"; each provider's table says so
    TIMED_OUT = "timed_out"
    ERROR = "error"  # Ferry or the cluster failed, not the user's code
    SKIPPED = "skipped"  # `when` filtered the run out
    NEUTRAL = "neutral"

    @property
    def final(self) -> bool:
        return self not in _IN_PROGRESS


_IN_PROGRESS = frozenset({Conclusion.QUEUED, Conclusion.RUNNING})


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """One status (commit status or check run) as Ferry wants the forge to show it.

    `context` names the check ("ferry/test"); it is what branch protection rules match, so it
    must stay stable across runs. `title` is the one-line description commit statuses show
    (providers truncate it to their limits); `summary` and `text` are Markdown shown only by
    GitHub check runs. `external_id` lets a GitHub check run be found from Ferry's side.
    """

    conclusion: Conclusion
    context: str
    title: str
    summary: str = ""
    text: str = ""
    details_url: str | None = None
    external_id: str | None = None


def shorten(text: str, limit: int) -> str:
    """Cut `text` to a forge's field limit, marking the cut."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
