"""What Ferry's checks on a commit are called and what they say: the one home for both.

The receiver (invalid spec, waiting, nothing to run, a job `when` skipped), the controller
(Tekton runs) and the local backend (runs on the serving machine) all build their statuses
from here, so a branch protection rule names the same context, and a person reads the same
words, whichever of them reported.

What a run shows, in every report mode (commit statuses or check runs) and from either
backend: one check for the run (`run_title`) and one per job, each matrix variant its own
(`job_title`), moving queued -> running -> one final conclusion. An `allow_failure` job
that fails is `NEUTRAL` ("Failed (allowed)"), and a run's title names the jobs that
`FAILED` names. `tests/e2e/test_same_reports.py` runs one spec through both backends and
compares what the forge shows.

Contexts: `<prefix>` for a run, `<prefix>/<job>` for each job, where `<prefix>` is
`controller.context_prefix` ("ferry"). Words: `WORDS`, "Succeeded", "Failed", ...; a finished
run adds its duration and the jobs that failed ("Failed in 1m 3s: test").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ci.forges.statuses import Conclusion, Status
from pipelines.problems import Problem, Severity

DEFAULT_PREFIX = "ferry"
# How many problems an invalid-spec status lists before saying how many more there are.
MAX_LISTED_PROBLEMS = 50
# How many failed jobs a run's title names before "...".
MAX_NAMED_JOBS = 3

# The job conclusions a run's title names ("Failed in 1m 3s: test"): not a cancelled job
# (the run says it was cancelled), nor an allowed failure.
FAILED = frozenset({Conclusion.FAILURE, Conclusion.ERROR, Conclusion.TIMED_OUT})

WORDS: Mapping[Conclusion, str] = {
    Conclusion.QUEUED: "Queued",
    Conclusion.RUNNING: "Running",
    Conclusion.SUCCESS: "Succeeded",
    Conclusion.FAILURE: "Failed",
    Conclusion.CANCELLED: "Cancelled",
    Conclusion.TIMED_OUT: "Timed out",
    Conclusion.ERROR: "Could not run",
    Conclusion.SKIPPED: "Skipped",
    Conclusion.NEUTRAL: "Failed (allowed)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Contexts:
    """The names of a repository's checks, from `controller.context_prefix`."""

    prefix: str = DEFAULT_PREFIX

    def run(self) -> str:
        return self.prefix

    def job(self, job: str) -> str:
        return f"{self.prefix}/{job}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    minutes, second = divmod(whole, 60)
    hours, minute = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minute}m"
    if minutes:
        return f"{minutes}m {second}s"
    return f"{second}s"


def verdict(
    conclusion: Conclusion, *, seconds: float | None = None, failed: Sequence[str] = ()
) -> str:
    """A run's title: "Queued", "Succeeded in 12s", "Failed in 1m 3s: test, lint"."""
    word = WORDS[conclusion]
    if not conclusion.final:
        return word
    tail = f" in {format_duration(seconds)}" if seconds is not None else ""
    if failed:
        more = " ..." if len(failed) > MAX_NAMED_JOBS else ""
        shown = ", ".join(failed[:MAX_NAMED_JOBS]) + more
        return f"{word}{tail}: {shown}"
    return f"{word}{tail}"


def run_title(
    conclusion: Conclusion, *, seconds: float | None = None, failed: Sequence[str] = (),
    note: str = "",
) -> str:
    """A run's title from queued to its verdict, with the receiver's note when there is one:
    "Queued (running without secrets)", "Failed in 1m 3s: test"."""
    return with_note(verdict(conclusion, seconds=seconds, failed=failed), note)


def job_title(conclusion: Conclusion, *, seconds: float | None = None) -> str:
    """A job's title: "Running", "Succeeded in 3s"."""
    word = WORDS[conclusion]
    if conclusion.final and seconds is not None:
        return f"{word} in {format_duration(seconds)}"
    return word


def with_note(title: str, note: str) -> str:
    """The trust decision or `/ok-to-test` note after a run's title, when there is one."""
    return f"{title} ({note})" if note else title


# What the receiver posts for an event that starts no run (and, for a backend whose runs no
# one else reports, "queued"). `webhooks.notices` decides whether to post them at all.


def queued(contexts: Contexts, run_name: str, *, note: str = "") -> Status:
    """A run's first report, in the words the controller's first report uses."""
    return Status(
        conclusion=Conclusion.QUEUED,
        context=contexts.run(),
        title=run_title(Conclusion.QUEUED, note=note),
        external_id=run_name,
    )


# The `external_id` of the receiver's "waiting" check run (GitHub App mode), by which it is
# found again: the controller's first report of a run at that commit takes it over (updates
# it into the run's own check run), and a newer push to the pull request completes it as
# superseded. Neither leaves it queued.
WAITING_EXTERNAL_ID = "ferry-waiting"


def waiting(contexts: Contexts, reason: str) -> Status:
    return Status(conclusion=Conclusion.QUEUED, context=contexts.run(), title=reason,
                  external_id=WAITING_EXTERNAL_ID)


def superseded_waiting(contexts: Contexts, sha: str) -> Status:
    """What a waiting check becomes when a newer commit replaced its pull request's head."""
    return Status(
        conclusion=Conclusion.CANCELLED,
        context=contexts.run(),
        title=f"{WORDS[Conclusion.CANCELLED]}: superseded by {sha[:12]}",
        external_id=WAITING_EXTERNAL_ID,
    )


def skipped_by_commit(contexts: Contexts, marker: str) -> Status:
    """`[skip ci]` in the head commit's message: nothing ran, and the check says so without
    passing (a green required check on an untested commit would be a false green)."""
    return Status(
        conclusion=Conclusion.QUEUED,
        context=contexts.run(),
        title=f"not run: the commit message says {marker}; /retest on a pull request runs it",
    )


def nothing_to_run(contexts: Contexts, reason: str) -> Status:
    return Status(
        conclusion=Conclusion.SKIPPED, context=contexts.run(), title=f"nothing to run: {reason}"
    )


def job_skipped(contexts: Contexts, job: str, reason: str) -> Status:
    """A job `when` filtered out, so that a check required per job does not wait forever."""
    return Status(
        conclusion=Conclusion.SKIPPED,
        context=contexts.job(job),
        title=f"{WORDS[Conclusion.SKIPPED]}: {reason}",
    )


def invalid_spec(contexts: Contexts, problems: Sequence[Problem]) -> Status:
    """Failure naming the first error with its `file:line:column`; every problem in the text."""
    errors = [problem for problem in problems if problem.severity is Severity.ERROR]
    first = errors[0] if errors else None
    title = f"invalid spec: {first}" if first else "invalid spec"
    listed = [f"- `{problem}`" for problem in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        listed.append(f"- ... and {len(problems) - MAX_LISTED_PROBLEMS} more")
    count = len(errors)
    return Status(
        conclusion=Conclusion.FAILURE,
        context=contexts.run(),
        title=title,
        summary=f"{count} error{'' if count == 1 else 's'}; run `ferry lint` to see them.",
        text="\n".join(listed),
    )
