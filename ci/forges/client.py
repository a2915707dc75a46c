"""The one small protocol every forge's async client implements, and the credentials it takes.

A client is cheap: make one per Repository object around a shared `httpx.AsyncClient`, which
the receiver and controller open in their lifespan and close on shutdown. Every method may
raise the `ForgeError`s of `ci.forges.errors`; the caller decides about retries with
`is_temporary` and `retry_after`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ci.forges.statuses import Status
from ci.forges.types import InstallationId, ReportId, RepositoryName
from pipelines.events import Event


@dataclass(frozen=True, slots=True)
class TokenCredentials:
    """A personal, project or bot access token (GitHub token mode, Gitea, GitLab)."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class GitHubAppCredentials:
    """A GitHub App installation: statuses are reported as check runs."""

    app_id: str
    private_key: str = field(repr=False)  # PEM, RS256
    installation_id: InstallationId


Credentials = TokenCredentials | GitHubAppCredentials


class ForgeClient(Protocol):
    async def read_file(self, repository: RepositoryName, path: str, ref: str) -> bytes | None:
        """The file's bytes at `ref` (a commit sha, preferably), or None if there is none."""

    async def default_branch(self, repository: RepositoryName) -> str:
        """The repository's default branch (a manual run that names no branch runs it)."""

    async def branch_head(self, repository: RepositoryName, branch: str) -> str | None:
        """The commit `branch` points at now, or None if there is no such branch (scheduled
        and manual runs of a branch run this commit)."""

    async def changed_files(self, repository: RepositoryName, number: int) -> tuple[str, ...]:
        """Paths a pull request touches (both sides of a rename), sorted, all pages read."""

    async def report_status(
        self,
        repository: RepositoryName,
        sha: str,
        status: Status,
        *,
        report_id: ReportId | None = None,
    ) -> ReportId | None:
        """Show `status` on the commit.

        Where the forge updates a report in place (GitHub check runs), pass the `ReportId` a
        previous call returned to update it instead of creating another; keep it somewhere
        that survives restarts. Commit statuses are keyed by `status.context` on the forge
        itself and return None.
        """

    async def has_status(self, repository: RepositoryName, sha: str, status: Status) -> bool:
        """Whether the commit already shows `status` exactly as `report_status` would post it.

        True when the newest commit status of `status.context` on `sha` (greatest id; all
        pages read) has the state, description and link `report_status` sends for `status`.
        Commit statuses are last-writer-wins per context on every forge, so posting `status`
        again would then change nothing anyone sees: the controller asks this before
        re-sending a report a killed predecessor may already have delivered.

        False also when the client cannot tell (GitHub App mode reports check runs: ask
        `CheckRunLookup.find_check_run` instead). False only ever costs a repeated report,
        never a lost one.
        """

    async def shown_contexts(self, repository: RepositoryName, sha: str) -> frozenset[str]:
        """Every context the commit shows anything under: the contexts of all its commit
        statuses, or (GitHub App mode) the names of all its check runs, whoever posted them.

        The receiver asks this before it posts a status that no run wrote (nothing to run,
        waiting, invalid spec, a job skipped): those must never replace what a run
        reported on the same commit (docs/webhooks.md, "What a commit shows").
        """

    async def comment(self, repository: RepositoryName, number: int, body: str) -> None:
        """Add a comment to pull request `number`."""

    async def has_write_access(
        self, repository: RepositoryName, user: str, *, user_id: int | None = None
    ) -> bool:
        """Whether `user` may push to the repository (the `/ok-to-test` and trust check).

        `user_id`, when given, is the user asked about and `user` only names them: GitLab's
        merge request payloads name the author only by id (docs/webhooks.md, "Trust").
        """


@dataclass(frozen=True, slots=True, kw_only=True)
class ShownCheckRun:
    """A check run the forge already has for a report: `report_id` to update it with, and
    whether it already shows the status exactly as `report_status` would send it, and
    whether it is completed (whatever its conclusion)."""

    report_id: ReportId
    current: bool
    completed: bool = False


@runtime_checkable
class CheckRunLookup(Protocol):
    """A client that reports check runs and can find them again (GitHub App mode)."""

    async def find_check_run(
        self, repository: RepositoryName, sha: str, status: Status
    ) -> ShownCheckRun | None:
        """The newest check run on `sha` named `status.context` with `status.external_id`
        (all pages read), or None: then creating it is no repeat. The controller asks this
        before re-sending a check run whose creation a killed predecessor may have seen
        through, and updates the one found instead of creating a second."""


@runtime_checkable
class InstallationTokens(Protocol):
    """A client that authenticates with a GitHub App's installation token, which a clone of
    a private repository uses too."""

    async def installation_token(self) -> str:
        """The installation token the client's calls carry now (cached until shortly
        before it expires)."""


@runtime_checkable
class PullRequestReader(Protocol):
    """A client that reads a pull request's head from the API (GitHub, whose comment and
    check run payloads do not carry the event a pull request's head runs)."""

    async def pull_request(self, repository: RepositoryName, number: int) -> Event | None:
        """The event pull request `number`'s head runs, with its author; None when there is
        no such open pull request."""


@runtime_checkable
class CommitMessageReader(Protocol):
    """A client that reads a commit's message (GitHub, Gitea: their pull request events do not
    carry the head commit's message that `[skip ci]` is read from)."""

    async def commit_message(self, repository: RepositoryName, sha: str) -> str | None:
        """The message of commit `sha`; None when there is no such commit."""
