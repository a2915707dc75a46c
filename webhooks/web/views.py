"""What the pages show, from the read service's run dictionaries (`webhooks.api.runs`):
filters, jobs in `needs` order, durations and the forge's commit and pull request links.
Pure: dictionaries in, plain values out; the templates escape everything."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ci.forges.checks import format_duration
from ci.forges.statuses import Conclusion
from ci.kube.repositories import Repository

# States a run or job is shown as failed in (a log tail is shown for these jobs).
FAILED = frozenset({Conclusion.FAILURE.value, Conclusion.ERROR.value,
                    Conclusion.TIMED_OUT.value})
UNFINISHED = frozenset({Conclusion.QUEUED.value, Conclusion.RUNNING.value})
STATES = tuple(conclusion.value for conclusion in Conclusion)


def duration(seconds: float | None) -> str:
    return format_duration(seconds)


def short_time(stamp: str | None) -> str:
    """`2026-12-02T08:00:00Z` as `2026-12-02 08:00`; unknown: empty."""
    if not stamp:
        return ""
    return stamp.replace("T", " ")[:16]


def filter_runs(runs: Sequence[Mapping[str, Any]], *, branch: str | None, state: str | None
                ) -> list[Mapping[str, Any]]:
    return [run for run in runs
            if (not branch or run.get("branch") == branch)
            and (not state or run.get("state") == state)]


def ordered_jobs(jobs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Jobs by stage: each after every job it needs (a job's stage is one more than its
    latest need's), in the run's own order within a stage; the `finally` jobs last."""
    regular = [job for job in jobs if not job.get("finally")]
    by_name = {str(job["name"]): job for job in regular}
    stages: dict[str, int] = {}

    def stage(name: str, seen: frozenset[str]) -> int:
        if name not in stages:
            needs = [n for n in by_name[name].get("needs") or ()
                     if n in by_name and n not in seen]  # a cycle cannot compile; guard
            stages[name] = 1 + max((stage(n, seen | {name}) for n in needs), default=-1)
        return stages[name]

    order = {str(job["name"]): index for index, job in enumerate(regular)}
    placed = sorted(regular, key=lambda job: (stage(str(job["name"]), frozenset()),
                                              order[str(job["name"])]))
    return [*placed, *(job for job in jobs if job.get("finally"))]


def failing_step(job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The step whose log says why a job failed: the first that failed, else the last that
    ran (a job that timed out or errored with no step failing)."""
    steps: list[Mapping[str, Any]] = list(job.get("steps") or ())
    for step in steps:
        if step.get("state") == Conclusion.FAILURE.value:
            return step
    ran = [step for step in steps if step.get("state") != Conclusion.SKIPPED.value]
    return ran[-1] if ran else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ForgeLinks:
    """Where a commit and a pull request are on the forge (None: no safe link)."""

    base: str | None  # the repository's web URL, http(s) only
    forge: str

    @classmethod
    def of(cls, repository: Repository) -> ForgeLinks:
        url = repository.url.strip().rstrip("/").removesuffix(".git")
        parts = urlsplit(url)
        safe = parts.scheme in ("http", "https") and bool(parts.netloc)
        return cls(base=url if safe else None, forge=repository.forge)

    def commit(self, sha: str) -> str | None:
        if self.base is None or not sha:
            return None
        middle = "/-/commit/" if self.forge == "gitlab" else "/commit/"
        return f"{self.base}{middle}{quote(sha, safe='')}"

    def pull_request(self, number: str) -> str | None:
        if self.base is None or not str(number).isdigit():
            return None
        if self.forge == "gitlab":
            return f"{self.base}/-/merge_requests/{number}"
        if self.forge in ("gitea", "forgejo"):
            return f"{self.base}/pulls/{number}"
        return f"{self.base}/pull/{number}"


def pull_request_word(forge: str) -> str:
    return "merge request" if forge == "gitlab" else "pull request"
