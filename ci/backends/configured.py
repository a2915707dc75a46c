"""Repositories listed in settings, for `ferry serve` without a cluster (no Repository objects).

They become the same `Repository` values the cluster's index holds (in a pseudo-namespace
`local`), so the receiver's flow does not know which it is serving.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ci.forges.client import TokenCredentials
from ci.kube.credentials import RepositoryCredentials
from ci.kube.repositories import (
    Conflict,
    Repository,
    SecretKeys,
    UntrustedPolicy,
    normalize_url,
)
from ci.settings import LocalRepository

LOCAL_NAMESPACE = "local"


class ConfiguredRepositories:
    """A fixed lookup by URL, with each repository's credentials from settings."""

    def __init__(self, configured: Iterable[LocalRepository], *, hold_untrusted: bool) -> None:
        """`hold_untrusted`: every repository's untrusted pull requests wait for a
        maintainer's `/ok-to-test`, whatever its own setting (steps run on the host)."""
        self._by_url: dict[str, list[Repository]] = {}
        self._credentials: dict[str, RepositoryCredentials] = {}
        self._clone_urls: dict[str, str] = {}
        self._repositories: dict[str, Repository] = {}
        for entry in configured:
            repository = _repository(entry, hold_untrusted=hold_untrusted)
            self._by_url.setdefault(normalize_url(entry.url), []).append(repository)
            self._repositories[repository.key] = repository
            self._credentials[repository.key] = RepositoryCredentials(
                webhook_secret=entry.webhook_secret,
                forge=TokenCredentials(entry.token) if entry.token else None,
            )
            if entry.clone_url:
                self._clone_urls[repository.key] = entry.clone_url

    def lookup(self, url: str) -> Repository | Conflict | None:
        normalized = normalize_url(url)
        found = self._by_url.get(normalized, [])
        if len(found) > 1:
            return Conflict(normalized, tuple(found))
        return found[0] if found else None

    def cached(self, repository: Repository) -> RepositoryCredentials | None:
        return self.for_repository(repository)  # in memory: never blocks

    def for_repository(self, repository: Repository) -> RepositoryCredentials:
        return self._credentials[repository.key]

    def by_key(self, key: str) -> Repository | None:
        return self._repositories.get(key)

    def clone_url(self, repository: Repository) -> str | None:
        """Where to fetch from instead of the delivery's clone URL, if settings say so."""
        return self._clone_urls.get(repository.key)

    def secrets(self) -> list[str]:
        """Every secret value held, for the log redactor."""
        values: list[str] = []
        for credentials in self._credentials.values():
            if credentials.webhook_secret:
                values.append(credentials.webhook_secret)
            if isinstance(credentials.forge, TokenCredentials):
                values.append(credentials.forge.token)
        return values


def _repository(entry: LocalRepository, *, hold_untrusted: bool) -> Repository:
    # A readable name from the URL's path, and a hash so two hosts' `acme/shop` differ.
    path = normalize_url(entry.url).split("://", 1)[-1].split("/", 1)[-1]
    digest = hashlib.sha256(normalize_url(entry.url).encode()).hexdigest()[:6]
    name = "-".join(part for part in path.lower().replace(".", "-").split("/") if part)
    return Repository(
        namespace=LOCAL_NAMESPACE,
        name=f"{name[:50]}-{digest}",
        uid=digest,
        forge=entry.forge,
        url=entry.url,
        api_url=entry.api_url,
        secret=SecretKeys(name="settings"),
        spec_path=entry.spec_path,
        cancel_in_progress=entry.cancel_in_progress,
        untrusted=(
            UntrustedPolicy.WAIT_FOR_OK_TO_TEST if hold_untrusted
            else UntrustedPolicy(entry.untrusted_pull_requests)
        ),
    )
