"""Keep the last `keepRuns` finished runs per Repository; older ones are deleted.

A run is deleted only after its final report was acknowledged: deleting first would lose the
memory of what was reported along with the status still owed. With an archive, only after its
step logs are archived too (`ferry.dev/archived`): deleting the run deletes its pods.
Pruning never deletes archived logs; retention does (`ci.controller.retaining`).
"""

from __future__ import annotations

from collections.abc import Iterable

from ci.controller.reporting import RUN_REPORT, Memory
from ci.controller.runs import RunSnapshot
from ci.kube import labels


def reported_final(run: RunSnapshot) -> bool:
    entry = Memory.of_annotations(run.annotations).acknowledged.get(RUN_REPORT)
    return entry is not None and entry.conclusion.final


def archived(run: RunSnapshot) -> bool:
    """Every step log of the finished run is in the archive (or recorded there as lost)."""
    return labels.ARCHIVED in run.annotations


def to_prune(runs: Iterable[RunSnapshot], *, keep: int, archiving: bool = False
             ) -> list[RunSnapshot]:
    """Of one Repository's runs, the finished ones beyond the newest `keep` finished;
    `archiving`: only those whose logs are archived."""
    finished = [run for run in runs if run.conclusion.final and not run.deleting]
    # Timestamps have one-second resolution: ties fall back on creation, then on the name.
    finished.sort(key=lambda run: (run.completion_time or run.created, run.created, run.name),
                  reverse=True)
    return [run for run in finished[max(0, keep):]
            if reported_final(run) and (archived(run) or not archiving)]
