"""What to report for a run and its jobs, and the memory of what was reported.

The memory is JSON in the run's `ferry.dev/reported` annotation, so it lives as long as the
run and survives controller restarts. The posting loop (`ci.controller.posting`):

1. plans the reports that differ from the memory (`plan`);
2. writes them into `sending`, with this process's incarnation, *before* calling the forge;
3. calls the forge; once it acknowledged them, moves the reports to `acknowledged`, in one
   write for the plan.

A restarted controller therefore never loses a report (anything not acknowledged is sent
again). It knows when it may have been killed between the forge's answer and step 3: a
`sending` entry of another incarnation. A report in that doubt is read back from the forge
first (a commit status from the commit's statuses, a check run from the commit's check runs
by name and `external_id`) and acknowledged without sending if the forge already shows it; a
check run found in an older state is updated rather than created again, and so is one
whose creation was written ahead and never acknowledged, whatever its state. Only a report
whose read-back the forge refused is sent in doubt and recorded in `doubts`, which therefore
lists exactly the reports that may have been repeated.

Before a run's own check run is first created, the receiver's open "waiting" check run at the
commit (`ci.forges.checks.WAITING_EXTERNAL_ID`) is looked up too, and updated into the run's
instead: a commit shows one `ferry` check run, never a queued one beside the run's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ci.controller.runs import ObservedJob, RunState
from ci.forges.statuses import Conclusion
from ci.forges.types import ReportId
from ci.kube import labels

RUN_REPORT = "run"  # the key of the pipeline's own report; jobs are "job/<name>"
MEMORY_VERSION = 1
# Doubts are kept for operators and tests; a run that is retried in a loop must not grow
# its annotation without bound.
MAX_DOUBTS = 20


def job_key(job: str) -> str:
    return f"job/{job}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledged:
    conclusion: Conclusion
    report_id: ReportId | None = None
    rejected: bool = False  # the forge refused it for good (4xx): not retried


@dataclass(frozen=True, slots=True, kw_only=True)
class Sending:
    conclusion: Conclusion
    incarnation: str  # which controller process wrote it


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    """What the forge has acknowledged, per report key; `sequence` orders two copies."""

    sequence: int = 0
    acknowledged: Mapping[str, Acknowledged] = field(default_factory=dict)
    sending: Mapping[str, Sending] = field(default_factory=dict)
    doubts: tuple[str, ...] = ()

    def report_id(self, key: str) -> ReportId | None:
        found = self.acknowledged.get(key)
        return found.report_id if found is not None else None

    def in_doubt(self, key: str, conclusion: Conclusion, *, incarnation: str) -> bool:
        """Whether another process may already have delivered this very report."""
        sending = self.sending.get(key)
        return (
            sending is not None
            and sending.conclusion == conclusion
            and sending.incarnation != incarnation
        )

    def with_sending(
        self, reports: Sequence[Report], *, incarnation: str, absent: Collection[str] = ()
    ) -> Memory:
        """`reports` written ahead; those in doubt are recorded in `doubts`, except the keys
        in `absent`: the forge was asked and does not show them, so sending is no repeat."""
        sending = dict(self.sending)
        doubts = list(self.doubts)
        for report in reports:
            if report.key not in absent and self.in_doubt(
                report.key, report.conclusion, incarnation=incarnation
            ):
                doubts.append(f"{report.key}={report.conclusion.value}")
            sending[report.key] = Sending(conclusion=report.conclusion, incarnation=incarnation)
        return replace(
            self,
            sequence=self.sequence + 1,
            sending=MappingProxyType(sending),
            doubts=tuple(doubts[-MAX_DOUBTS:]),
        )

    def with_acknowledged(
        self,
        key: str,
        conclusion: Conclusion,
        *,
        report_id: ReportId | None,
        rejected: bool = False,
    ) -> Memory:
        acknowledged = dict(self.acknowledged)
        previous = acknowledged.get(key)
        acknowledged[key] = Acknowledged(
            conclusion=conclusion,
            # A commit status answers no id; keep the check run's from earlier reports.
            report_id=report_id or (previous.report_id if previous is not None else None),
            rejected=rejected,
        )
        sending = {k: v for k, v in self.sending.items() if k != key}
        return replace(
            self,
            sequence=self.sequence + 1,
            acknowledged=MappingProxyType(acknowledged),
            sending=MappingProxyType(sending),
        )

    # -- the annotation ---------------------------------------------------------------------

    def dumps(self) -> str:
        document: dict[str, Any] = {
            "v": MEMORY_VERSION,
            "seq": self.sequence,
            "ack": {
                key: [entry.conclusion.value, entry.report_id, *([1] if entry.rejected else [])]
                for key, entry in sorted(self.acknowledged.items())
            },
        }
        if self.sending:
            document["sending"] = {
                key: [entry.conclusion.value, entry.incarnation]
                for key, entry in sorted(self.sending.items())
            }
        if self.doubts:
            document["doubts"] = list(self.doubts)
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | None) -> Memory:
        """The memory in an annotation; an unreadable one counts as nothing reported (a
        repeated report is better than a lost one). Parsed once per distinct text: every
        event of a run, and the store's copy of it, carry the same annotation."""
        if not text:
            return cls()
        return _parsed(text)

    @classmethod
    def _parse(cls, text: str) -> Memory:
        try:
            document = json.loads(text)
            acknowledged = {
                str(key): Acknowledged(
                    conclusion=Conclusion(value[0]),
                    report_id=ReportId(str(value[1])) if value[1] is not None else None,
                    rejected=len(value) > 2 and bool(value[2]),
                )
                for key, value in (document.get("ack") or {}).items()
            }
            sending = {
                str(key): Sending(conclusion=Conclusion(value[0]), incarnation=str(value[1]))
                for key, value in (document.get("sending") or {}).items()
            }
            return cls(
                sequence=int(document.get("seq", 0)),
                acknowledged=MappingProxyType(acknowledged),
                sending=MappingProxyType(sending),
                doubts=tuple(str(doubt) for doubt in document.get("doubts") or ()),
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return cls()

    @classmethod
    def of_annotations(cls, annotations: Mapping[str, str]) -> Memory:
        return cls.loads(annotations.get(labels.REPORTED))


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Memory:
    return Memory._parse(text)


def newest(*memories: Memory | None) -> Memory:
    """Of several copies (the annotation of an event, the one this process last wrote), the
    most recent: the annotation of a queued event can be older than our own last write."""
    found: Memory | None = None
    for memory in memories:  # the first of the most recent, as `max` would pick
        if memory is not None and (found is None or memory.sequence > found.sequence):
            found = memory
    return found if found is not None else Memory()  # made only when none is present


# -- planning -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    key: str
    conclusion: Conclusion
    job: ObservedJob | None = None  # None: the pipeline's own report
    report_id: ReportId | None = None  # the check run to update, if one exists


def _stage(conclusion: Conclusion) -> int:
    """Reports only move forward: queued, then running, then one final conclusion."""
    if conclusion is Conclusion.QUEUED:
        return 0
    if conclusion is Conclusion.RUNNING:
        return 1
    return 2


def _due(key: str, conclusion: Conclusion, memory: Memory) -> bool:
    previous = memory.acknowledged.get(key)
    if previous is None:
        return True
    if previous.conclusion.final:
        return False  # one final report, ever; a run does not come back to life
    return previous.conclusion != conclusion and _stage(conclusion) >= _stage(
        previous.conclusion
    )


def plan(state: RunState, memory: Memory) -> tuple[Report, ...]:
    """The reports to send now, jobs first so the pipeline's summary is the last word.

    In every report mode a run shows one report for itself and one per job (each matrix
    variant its own), as the local backend reports too (`ci.forges.checks`): with commit
    statuses as with check runs, a branch protection rule can require a single job.
    """
    reports: list[Report] = []
    for job in state.jobs:
        key = job_key(job.name)
        if _due(key, job.conclusion, memory):
            reports.append(
                Report(
                    key=key,
                    conclusion=job.conclusion,
                    job=job,
                    report_id=memory.report_id(key),
                )
            )
    if _due(RUN_REPORT, state.conclusion, memory):
        reports.append(
            Report(
                key=RUN_REPORT,
                conclusion=state.conclusion,
                report_id=memory.report_id(RUN_REPORT),
            )
        )
    return tuple(reports)
