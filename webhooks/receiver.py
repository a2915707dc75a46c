"""The receiver's state: what the flow (`webhooks.handling`) uses, opened once by the app's
lifespan (`Receiver`), and what one verified delivery is for (`Target`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from ci.backends import Backend
from ci.forges.checks import Contexts
from ci.forges.client import ForgeClient
from ci.forges.connections import Connection
from ci.forges.types import DeliveryId, RepositoryName
from ci.kube.repositories import Conflict, Repository
from ci.kube.repository_status import LastEvent
from ci.repository_forges import RepositoryForge, RepositoryForges
from ci.settings import ForgeSettings
from pipelines.preparing import Specs
from webhooks.answers import Answer, DeliveryRejectedError
from webhooks.deliveries import DeliveryMemory
from webhooks.retrying import with_retries

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(slots=True)
class Labels:
    """What is known about a delivery so far, for metrics even when it is refused."""

    forge: str = "unknown"
    event: str = "unknown"


class RepositoryLookup(Protocol):
    def lookup(self, url: str) -> Repository | Conflict | None: ...


class LastEventSink(Protocol):
    def record(self, repository: Repository, event: LastEvent) -> None:
        """Note the event for the Repository's status; must not block or raise."""


@dataclass(kw_only=True)
class Receiver:
    """Everything the flow uses, opened once by the app's lifespan."""

    repositories: RepositoryLookup
    # Each Repository's webhook secret and forge connection (client, report mode, clone
    # token), its secrets registered with the process's log redactor.
    repository_forges: RepositoryForges
    backend: Backend
    deliveries: DeliveryMemory[Answer]
    forges: ForgeSettings
    # The checks' names (`controller.context_prefix`), as the controller reports runs.
    contexts: Contexts = field(default_factory=Contexts)
    # Where verified deliveries' outcomes go (the Repository's status); None: nowhere (local).
    last_events: LastEventSink | None = None
    # The specs read so far, each parsed and linted once (`pipelines.preparing.Specs`).
    specs: Specs = field(default_factory=Specs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """The Repository a verified delivery is for, and the forge API to answer it with."""

    repository: Repository
    name: RepositoryName  # owner/name as the forge spells it
    access: RepositoryForge
    delivery_id: DeliveryId
    receiver: Receiver

    @property
    def connection(self) -> Connection:
        if self.access.connection is None:
            raise DeliveryRejectedError(
                422,
                f"Repository {self.repository.key}: its Secret has no API credentials, so "
                "Ferry cannot read the spec or report statuses",
                outcome="no-credentials",
            )
        return self.access.connection

    @property
    def forge(self) -> ForgeClient:
        return self.connection.client

    async def call(self, call: Callable[[], Awaitable[T]]) -> T:
        return await with_retries(call, settings=self.receiver.forges)
