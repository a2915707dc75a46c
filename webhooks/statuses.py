"""The statuses the receiver shows on a commit: invalid spec, waiting, nothing to run (no run
to report), and queued for a backend whose runs no one else reports."""

from __future__ import annotations

from collections.abc import Sequence

from ci.backends import STATUS_CONTEXT
from ci.forges.statuses import Conclusion, Status
from pipelines.problems import Problem, Severity

# How many problems the details list before saying how many more there are.
MAX_LISTED_PROBLEMS = 50


def queued(run_name: str, *, note: str = "") -> Status:
    """For a backend whose runs no one else reports (`Backend.reports_runs` false)."""
    title = f"queued: {run_name}" + (f" ({note})" if note else "")
    return Status(
        conclusion=Conclusion.QUEUED, context=STATUS_CONTEXT, title=title, external_id=run_name
    )


def waiting(reason: str) -> Status:
    return Status(conclusion=Conclusion.QUEUED, context=STATUS_CONTEXT, title=reason)


def nothing_to_run(reason: str) -> Status:
    return Status(
        conclusion=Conclusion.SKIPPED, context=STATUS_CONTEXT, title=f"nothing to run: {reason}"
    )


def invalid_spec(problems: Sequence[Problem]) -> Status:
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
        context=STATUS_CONTEXT,
        title=title,
        summary=f"{count} error{'' if count == 1 else 's'}; run `ferry lint` to see them.",
        text="\n".join(listed),
    )
