"""A Repository's webhook secret and forge credentials, read from its Secret.

Read on demand and cached briefly: the receiver needs the webhook secret on every delivery,
and watching Secrets cluster-wide would need far broader RBAC than reading the few that
Repository objects name. A rotated secret is picked up within `ttl` seconds.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ci.forges.client import Credentials, GitHubAppCredentials, TokenCredentials
from ci.forges.types import InstallationId
from ci.kube.errors import CredentialsError
from ci.kube.plain import call_json
from ci.kube.repositories import Repository
from ci.kube.resources import SECRET


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryCredentials:
    webhook_secret: str | None = field(repr=False)  # None: the Secret has no such key
    forge: Credentials | None = field(repr=False)  # None: no API access configured


SecretReader = Callable[[str, str], Mapping[str, str] | None]  # (namespace, name) -> data


def api_secret_reader(api_client: Any, *, timeout: float) -> SecretReader:
    """Read Secrets through the Kubernetes API; None for a Secret that does not exist."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 (kept lazy)

    def read(namespace: str, name: str) -> Mapping[str, str] | None:
        try:
            secret = call_json(api_client, "GET", SECRET.path(namespace, name), timeout=timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return {
            key: base64.b64decode(value).decode("utf-8", errors="replace")
            for key, value in (secret.get("data") or {}).items()
        }

    return read


class CredentialsCache:
    """Credentials per Repository, each read at most once per `ttl` seconds."""

    def __init__(
        self,
        reader: SecretReader,
        *,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, Mapping[str, str]]] = {}

    def for_repository(self, repository: Repository) -> RepositoryCredentials:
        return self._credentials(repository,
                                 self._secret(repository.namespace, repository.secret.name))

    def cached(self, repository: Repository) -> RepositoryCredentials | None:
        """As `for_repository` while the Secret's cached copy is fresh, else None: never
        reads the Secret, so async code asks this first and needs no thread."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get((repository.namespace, repository.secret.name))
        if cached is None or now - cached[0] >= self._ttl:
            return None
        return self._credentials(repository, cached[1])

    def _credentials(self, repository: Repository,
                     data: Mapping[str, str]) -> RepositoryCredentials:
        keys = repository.secret
        # `kubectl create secret --from-file` keeps the file's final newline; no forge sends it.
        webhook_secret = (data.get(keys.webhook_secret_key) or "").rstrip("\r\n") or None
        forge: Credentials | None = None
        if repository.github_app is not None:
            private_key = data.get(keys.private_key_key)
            if not private_key:
                raise CredentialsError(
                    f"Secret {repository.namespace}/{keys.name} has no key "
                    f"`{keys.private_key_key}` for the GitHub App's private key"
                )
            forge = GitHubAppCredentials(
                app_id=str(repository.github_app.app_id),
                private_key=private_key,
                installation_id=InstallationId(repository.github_app.installation_id),
            )
        elif data.get(keys.token_key):
            forge = TokenCredentials(data[keys.token_key].strip())
        return RepositoryCredentials(webhook_secret=webhook_secret, forge=forge)

    def _secret(self, namespace: str, name: str) -> Mapping[str, str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get((namespace, name))
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        data = self._reader(namespace, name)
        if data is None:
            raise CredentialsError(f"Secret {namespace}/{name} does not exist")
        with self._lock:
            self._cache[(namespace, name)] = (now, dict(data))
        return data
