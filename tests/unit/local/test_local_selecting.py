from __future__ import annotations

import pytest

from ci.local.selecting import UnknownJobError, select_jobs
from pipelines.planning import Plan, PlannedJob, SkippedJob


def _job(name: str, *needs: str, spec_job: str | None = None, is_finally: bool = False):
    return PlannedJob(
        name=name, spec_job=spec_job or name, matrix={}, image="alpine", steps=(), env={},
        needs=needs, is_finally=is_finally,
    )  # fmt: skip


PLAN = Plan(
    jobs=(
        _job("lint"),
        _job("test-3-11", "lint", spec_job="test"),
        _job("test-3-12", "lint", spec_job="test"),
        _job("deploy", "test-3-11", "test-3-12"),
        _job("docs"),
    ),
    finally_jobs=(_job("notify", is_finally=True),),
    skipped=(SkippedJob(name="release", reason="event `push` is not one of: tag"),),
)


def _names(plan: Plan) -> list[str]:
    return [job.name for job in plan.all_jobs]


def test_a_spec_job_selects_every_variant_and_their_needs() -> None:
    assert _names(select_jobs(PLAN, ["test"])) == ["lint", "test-3-11", "test-3-12"]


def test_a_variant_and_a_finally_job_can_be_selected_by_name() -> None:
    assert _names(select_jobs(PLAN, ["test-3-12", "notify"])) == ["lint", "test-3-12", "notify"]


def test_needs_are_followed_transitively() -> None:
    assert _names(select_jobs(PLAN, ["deploy"])) == [
        "lint", "test-3-11", "test-3-12", "deploy",
    ]  # fmt: skip


def test_unknown_and_skipped_jobs_are_explained() -> None:
    with pytest.raises(UnknownJobError, match="no job `nope`; the jobs are: deploy, docs"):
        select_jobs(PLAN, ["nope"])
    with pytest.raises(UnknownJobError, match="`release` is skipped for this event: event"):
        select_jobs(PLAN, ["release"])
