"""Concurrency groups: which `PipelineRunPending` runs to start now.

The state is the runs themselves (their group label, `spec.status` and conditions on the API
server), so a restarted controller decides exactly as the previous one would have.
"""

from __future__ import annotations

from collections.abc import Iterable

from ci.controller.runs import RunSnapshot
from ci.kube import labels


def group_of(run: RunSnapshot) -> str | None:
    return run.labels.get(labels.CONCURRENCY_GROUP)


def limit_of(run: RunSnapshot) -> int | None:
    text = run.annotations.get(labels.CONCURRENCY_LIMIT, "")
    return int(text) if text.strip().isdigit() and int(text) >= 1 else None


def to_admit(group: Iterable[RunSnapshot]) -> list[RunSnapshot]:
    """The pending runs of one group to start now: oldest first, up to the free slots.

    The limit is the newest run's (the spec of the latest push is what the team wants now);
    a group without a readable limit admits one at a time.
    """
    runs = sorted(group, key=lambda run: (run.created, run.name))
    if not runs:
        return []
    limited = [limit for run in runs if (limit := limit_of(run)) is not None]
    limit = limited[-1] if limited else 1
    active = sum(1 for run in runs if run.active and not run.deleting)
    pending = [run for run in runs if run.pending and not run.deleting]
    return pending[: max(0, limit - active)]
