"""`--job X`: keep X and every job it needs, transitively, and nothing else.

X is a job's name in `.ci.yaml` (every matrix variant of it) or a planned job's name (one
variant). Finally jobs are left out unless one is selected by name: asking for `test` means
"run the tests", not "and notify the team".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from msgspec.structs import replace

from pipelines.planning import Plan, PlannedJob, SkippedJob


class UnknownJobError(Exception):
    def __init__(self, name: str, *, known: Iterable[str], skipped: Sequence[SkippedJob]):
        self.name = name
        reason = next((job.reason for job in skipped if job.name == name), None)
        if reason is not None:
            message = f"job `{name}` is skipped for this event: {reason}"
        else:
            message = f"no job `{name}`; the jobs are: {', '.join(sorted(set(known)))}"
        super().__init__(message)


def select_jobs(plan: Plan, names: Sequence[str]) -> Plan:
    """`plan` narrowed to `names` and their needs (raises `UnknownJobError`)."""
    by_name = {job.name: job for job in plan.all_jobs}
    wanted: set[str] = set()
    for name in names:
        chosen = [job for job in plan.all_jobs if name in (job.name, job.spec_job)]
        if not chosen:
            known = [name for job in plan.all_jobs for name in (job.name, job.spec_job)]
            raise UnknownJobError(name, known=known, skipped=plan.skipped)
        for job in chosen:
            _add_with_needs(job, by_name=by_name, wanted=wanted)
    return replace(
        plan,
        jobs=tuple(job for job in plan.jobs if job.name in wanted),
        finally_jobs=tuple(job for job in plan.finally_jobs if job.name in wanted),
    )


def _add_with_needs(job: PlannedJob, *, by_name: dict[str, PlannedJob], wanted: set[str]) -> None:
    if job.name in wanted:
        return
    wanted.add(job.name)
    for need in job.needs:
        _add_with_needs(by_name[need], by_name=by_name, wanted=wanted)
