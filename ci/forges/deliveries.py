"""What a webhook delivery means, as the receiver acts on it.

`parse` turns every delivery into exactly one `Delivery`; its `parsed` field is one of:
an `Event` (run pipelines), `PullRequestClosed` (cancel the pull request's runs), `Comment`
(`/retest`, `/ok-to-test`, `/cancel`), `Rerun` (GitHub's "Re-run" buttons), `Ping`, or
`Ignored` with the reason, which the receiver answers with 202 so the forge shows the
delivery as handled.
"""

from __future__ import annotations

from dataclasses import dataclass

from ci.forges.types import DeliveryId, ForgeKind, InstallationId, RepositoryRef
from pipelines.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignored:
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    hook_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PullRequestClosed:
    number: int
    merged: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Comment:
    """A new comment on a pull request.

    `pull_request` is the event the pull request's head would run, when the payload carries
    enough to build it (Gitea, GitLab); GitHub's `issue_comment` does not, so it is `None`
    there and the receiver reads the pull request from the API (`PullRequestReader`).
    """

    number: int
    body: str
    author: str
    pull_request: Event | None = None

    @property
    def command(self) -> str | None:
        """The slash command the comment starts with (`/retest`), if any.

        Only the first word of the first non-blank line counts, so quoting a command in the
        middle of a discussion does not trigger it.
        """
        for line in self.body.splitlines():
            words = line.split()
            if words:
                first = words[0]
                return first if first.startswith("/") and len(first) > 1 else None
        return None

    @property
    def argument(self) -> str | None:
        """The word after the command on its line (`/retest test` -> "test"), if any."""
        for line in self.body.splitlines():
            words = line.split()
            if words:
                return words[1] if len(words) > 1 else None
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rerun:
    """GitHub's "Re-run" on one of Ferry's check runs (`job`: the job's check, None: the
    run's own check), or "Re-run failed checks"/"Re-run all checks" on a check suite
    (`job` None). `pull_requests` are the numbers GitHub lists, empty for a fork's pull
    request (GitHub lists only the repository's own); `branch` the suite's head branch."""

    source: str  # "check_run", "check_suite" or "web" (the web pages' buttons), for messages
    sha: str
    repository_url: str  # the clone URL, for a re-run of a push
    requester: str
    job: str | None = None
    pull_requests: tuple[int, ...] = ()
    branch: str | None = None
    whole: bool = False  # every job of the newest run, failed or not (the web's "Re-run all")


Parsed = Event | PullRequestClosed | Comment | Rerun | Ping | Ignored


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    forge: ForgeKind
    delivery_id: DeliveryId
    event_name: str  # the forge's own name from the headers ("push", "Merge Request Hook")
    parsed: Parsed
    repository: RepositoryRef | None = None
    installation_id: InstallationId | None = None  # GitHub App deliveries only
