"""The one seam for forge clients: for a repository and its credentials, the client, how
runs are reported to it, the values to mask and the token a clone uses.

One connection per repository, kept while its uid (a Repository deleted and made again),
API URL and credentials stay the same, around one shared `httpx.AsyncClient`. A GitHub App
client keeps its installation token until shortly before it expires
(`ci.forges.github.authentication`), and the clone token is that same token: a delivery
that needs a clone mints nothing new while the token is good. Rotated credentials are a
new client, which replaces the old one.

This module knows nothing of Kubernetes: the caller reads the credentials (the receiver
and the controller through `ci.repository_forges`, which joins this cache with a Repository's
Secret).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import httpx

from ci.forges.client import (
    Credentials,
    ForgeClient,
    GitHubAppCredentials,
    InstallationTokens,
    TokenCredentials,
)
from ci.forges.registry import provider_for


class ReportMode(StrEnum):
    """What the forge is given: commit statuses, or check runs (a GitHub App)."""

    COMMIT_STATUS = "commit-status"
    CHECK_RUNS = "check-runs"


def report_mode(credentials: Credentials) -> ReportMode:
    return (ReportMode.CHECK_RUNS if isinstance(credentials, GitHubAppCredentials)
            else ReportMode.COMMIT_STATUS)


def credential_values(credentials: Credentials | None) -> tuple[str, ...]:
    """The secret values of forge credentials: never shown in a log or page."""
    if isinstance(credentials, GitHubAppCredentials):
        return (credentials.private_key,)
    if isinstance(credentials, TokenCredentials):
        return (credentials.token,)
    return ()


class ForgeRepository(Protocol):
    """What the seam needs to know of a repository (a `ci.kube.repositories.Repository`)."""

    @property
    def key(self) -> str: ...
    @property
    def uid(self) -> str: ...
    @property
    def forge(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def api_url(self) -> str | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """A repository's forge, as both the receiver and the controller use it."""

    client: ForgeClient
    kind: str  # the forge, as metrics label it ("github", "gitea", "gitlab")
    mode: ReportMode
    credentials: Credentials = field(repr=False)
    masked: tuple[str, ...] = field(repr=False)  # credential values never to show

    async def clone_token(self) -> str:
        """The token a clone of a private repository uses: the access token itself, or
        the GitHub App's cached installation token (minted only when it is near expiry)."""
        if isinstance(self.credentials, TokenCredentials):
            return self.credentials.token
        if not isinstance(self.client, InstallationTokens):
            raise TypeError(f"a {self.kind} client has no installation token")
        return await self.client.installation_token()


class ForgeConnections:
    """Connections per repository and credentials, sharing one HTTP client."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        # By Repository key: what the connection was made for, and the connection.
        self._connections: dict[str, tuple[tuple[str, str, Credentials], Connection]] = {}

    def get(self, repository: ForgeRepository, credentials: Credentials) -> Connection:
        provider = provider_for(repository.forge)
        api_url = repository.api_url or provider.default_api_url(repository.url)
        made_for = (repository.uid, api_url, credentials)
        cached = self._connections.get(repository.key)
        if cached is not None and cached[0] == made_for:
            return cached[1]
        connection = Connection(
            client=provider.client(self._http, api_url=api_url, credentials=credentials),
            kind=provider.kind.value,
            mode=report_mode(credentials),
            credentials=credentials,
            masked=credential_values(credentials),
        )
        self._connections[repository.key] = (made_for, connection)
        return connection
