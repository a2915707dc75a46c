"""Where runs go: the `Backend` protocol, with Tekton (`tekton.py`) and this machine (`local.py`).

`ferry serve` picks one from settings: a configured cluster means Tekton, none means local.
The receiver's flow is the same for both; only `submit` and the cancellations differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ci.forges.client import ForgeClient
from ci.forges.statuses import Conclusion
from ci.forges.types import RepositoryName
from ci.kube.repositories import Repository
from pipelines.events import Event
from pipelines.planning import Plan


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """One run to start: a plan for an event of a repository."""

    repository: Repository
    event: Event
    plan: Plan
    # Distinguishes deliberate re-runs (`/retest`) of one commit from redeliveries, which
    # must land on the same name.
    name_prefix: str = ""
    clone_token: str | None = None  # None: clone without credentials
    # Runs of one branch or pull request allowed at once; None: no limit.
    concurrency_limit: int | None = None
    # The trust decision, for what a backend grants beyond the plan (whose secrets are already
    # gone when False): Tekton gives an untrusted run no ServiceAccount and labels it for the
    # NetworkPolicy; the local backend never runs it on the host. No default, so no caller
    # can forget it.
    trusted: bool
    forge: ForgeClient  # where a backend that tracks its own runs reports them
    forge_repository: RepositoryName
    # Why the run is as it is (the trust decision: "without secrets: ..."); whoever reports
    # the run shows it in the status description. Empty: nothing to say.
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmittedRun:
    name: str
    created: bool  # False: the same run existed already (a redelivery)


# A job that ended so is re-run by `/retest`; success, allowed failure and skipped are not.
RERUN_CONCLUSIONS = frozenset(
    {Conclusion.FAILURE, Conclusion.TIMED_OUT, Conclusion.CANCELLED, Conclusion.ERROR}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviousRun:
    """The newest run of a commit, as `/retest` and the Re-run buttons need it."""

    name: str
    trusted: bool  # it ran with the repository's secrets
    finished: bool
    pull_request: int | None  # the pull request it ran for, None for a push or tag
    jobs: Mapping[str, Conclusion]  # planned job name -> conclusion (finally jobs too)

    @property
    def failed(self) -> frozenset[str]:
        """The jobs that did not pass, which a re-run of the failed jobs runs again."""
        return frozenset(name for name, state in self.jobs.items() if state in RERUN_CONCLUSIONS)


class Backend(Protocol):
    """Runs plans. Call order, per event: `submit` once; then, if the spec or Repository asks
    to cancel in progress and the run was `created`, `cancel_superseded` with its name. A
    closed pull request calls `cancel_pull_request`. `ready` answers readiness probes.

    `/retest` and the Re-run buttons first ask `newest_run` which jobs of the commit's newest
    run failed, then `submit` a plan of those jobs and what depends on them.

    `submit` is idempotent by run name (the same event and prefix give the same name): a
    second call returns the existing run with `created=False`. It may raise
    `pipelines.problems.SpecError` for a plan the backend cannot run as written.

    `reports_runs` says whether something other than the receiver reports a submitted run's
    whole life to the forge, "queued" included (Tekton: the controller; local: the backend
    itself). The receiver then reports nothing about the run: a second "queued" under the
    same context would be a second, never-completed check run in GitHub App mode, and a
    redelivery would set a finished commit back to pending.
    """

    @property
    def reports_runs(self) -> bool: ...

    async def submit(self, request: RunRequest) -> SubmittedRun: ...

    async def cancel_superseded(self, request: RunRequest, *, newest: str) -> tuple[str, ...]:
        """Stop the unfinished runs of the same branch or pull request whose events happened
        before `newest`'s (`happened_before`: the forge's times, not arrival); returns their
        names. A run of a late event (older than runs already there) cancels only runs
        older still, and is itself left to run: its commit gets its verdict, and the newer
        commit's run goes on."""
        ...

    async def cancel_pull_request(self, repository: Repository, number: int) -> tuple[str, ...]:
        """Stop the unfinished runs of pull request `number`; returns their names."""
        ...

    async def cancel_run(self, repository: Repository, name: str) -> bool:
        """Stop run `name` of `repository` if it is unfinished (the web pages' Cancel, the
        same call as `/cancel`'s); False if there is no such unfinished run."""
        ...

    async def newest_run(
        self, repository: Repository, sha: str, *, pull_request: int | None = None
    ) -> PreviousRun | None:
        """The newest run of commit `sha` (of pull request `pull_request` only, when given),
        with its jobs' conclusions; None when the commit has none this backend knows of."""
        ...

    async def ready(self) -> str | None:
        """None when runs can be submitted; otherwise why not."""
        ...


def happened_before(
    time: str | None, created: str | None, *, than: tuple[str | None, str | None]
) -> bool:
    """Whether a run of an event at `time`, created at `created`, is older than the run
    `than` describes (event time, creation), so that the newer one supersedes it.

    By the forge's own event times when both have one and they differ: a late or
    redelivered old event must not cancel a newer run. Otherwise (a payload without a
    time, or both within one second) by creation, the order of arrival. Unknown creation
    (the newest run not listed yet) counts as older. Times are `MOMENT_FORMAT` text, whose
    string order is time order.
    """
    other_time, other_created = than
    if time and other_time and time != other_time:
        return time < other_time
    return created is None or other_created is None or created <= other_created
