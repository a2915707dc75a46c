"""A Repository's forge: the credentials its Secret holds, joined with the forge connection
(`ci.forges.connections`) that the receiver, the RunRequest worker and the controller share.

It lives in the components layer because it joins the two parts of the layer below, which
do not import each other: Secrets are read by `ci.kube` (or, without a cluster, come from
settings through `ci.backends.configured`), clients are made by `ci.forges`. Every secret
value it hands out (webhook secret, credentials, a GitHub App's clone token) goes to the
process's log redactor first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from ci.forges.connections import Connection, ForgeConnections, credential_values
from ci.kube.credentials import RepositoryCredentials
from ci.kube.repositories import Repository
from ci.logs import Redactor


class CredentialsSource(Protocol):
    """`ci.kube.credentials.CredentialsCache`, or `ConfiguredRepositories` without a
    cluster; raises `CredentialsError` for a missing Secret or key."""

    def for_repository(self, repository: Repository) -> RepositoryCredentials: ...

    def cached(self, repository: Repository) -> RepositoryCredentials | None:
        """The same without blocking, or None when only `for_repository` can tell."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryForge:
    webhook_secret: str | None = field(repr=False)  # None: the Secret has no such key
    connection: Connection | None  # None: the Secret has no API credentials
    masked: tuple[str, ...] = field(repr=False)  # the webhook secret and credential values


class RepositoryForges:
    """For a Repository: its webhook secret and forge connection, read and made once per
    credentials (the Secret itself is cached by the credentials source)."""

    def __init__(self, credentials: CredentialsSource, http: httpx.AsyncClient, *,
                 redactor: Redactor | None = None) -> None:
        self._credentials = credentials
        self._connections = ForgeConnections(http)
        self._redactor = redactor

    async def for_repository(self, repository: Repository) -> RepositoryForge:
        # A fresh cached copy needs no thread (a thread hand-off per report was a sixth of
        # the controller's busy time in a burst); a miss reads the Secret off the event loop.
        found = self._credentials.cached(repository)
        if found is None:
            found = await asyncio.to_thread(self._credentials.for_repository, repository)
        return self.of(repository, found)

    def of(self, repository: Repository, found: RepositoryCredentials) -> RepositoryForge:
        """The same, from credentials already read (in a thread of the caller's)."""
        connection = (self._connections.get(repository, found.forge)
                      if found.forge is not None else None)
        masked = tuple(value for value in (found.webhook_secret,
                                           *credential_values(found.forge)) if value)
        self._mask(masked)
        return RepositoryForge(webhook_secret=found.webhook_secret, connection=connection,
                               masked=masked)

    async def clone_token(self, connection: Connection) -> str:
        token = await connection.clone_token()
        self._mask((token,))
        return token

    def _mask(self, values: tuple[str, ...]) -> None:
        if self._redactor is not None:
            for value in values:
                self._redactor.add(value)
