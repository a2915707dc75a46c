"""Repository objects, and the in-memory index by URL that a watch keeps current.

The receiver looks up a Repository for every delivery; a list per request would put the API
server on the hot path of every push, so the index is fed by `ci.kube.watching.Watcher`.
Two Repository objects claiming the same URL are a conflict that the lookup reports, never
silently both served (a team could otherwise capture another team's pushes).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from ci.kube.watching import EventType, Object, WatchEvent


class UntrustedPolicy(StrEnum):
    RUN_WITHOUT_SECRETS = "runWithoutSecrets"
    WAIT_FOR_OK_TO_TEST = "waitForOkToTest"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretKeys:
    name: str
    webhook_secret_key: str = "webhook-secret"  # noqa: S105 (a key name, not a secret)
    token_key: str = "token"  # noqa: S105 (a key name, not a secret)
    private_key_key: str = "private-key"


@dataclass(frozen=True, slots=True, kw_only=True)
class GitHubApp:
    app_id: int
    installation_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """One of `spec.schedules`: run `branch`'s head commit at each time `cron` names."""

    name: str
    cron: str
    branch: str
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleMark:
    """What `status.schedules[]` says of one schedule: the last time it was started (or,
    before its first run, when the controller first saw it), for the cron it was written for."""

    name: str
    cron: str
    last_time: str  # RFC 3339
    last_run_request: str = ""  # the RunRequest of `last_time`, if one was made


@dataclass(frozen=True, slots=True, kw_only=True)
class Repository:
    """A `ferry.dev/v1alpha1` Repository, with the CRD's defaults applied."""

    namespace: str
    name: str
    uid: str
    forge: str
    url: str
    secret: SecretKeys
    api_url: str | None = None
    github_app: GitHubApp | None = None
    spec_path: str = ".ci.yaml"
    # The ServiceAccount whose API token trusted runs' pods get; None: no run gets a token.
    service_account: str | None = None
    concurrency_limit: int | None = None
    cancel_in_progress: bool = False
    keep_runs: int = 20
    untrusted: UntrustedPolicy = UntrustedPolicy.RUN_WITHOUT_SECRETS
    private: bool = False  # runs clone with a per-run token Secret
    public_logs: bool = False  # anyone may read its runs and logs on the web pages
    schedules: tuple[Schedule, ...] = ()
    schedule_marks: tuple[ScheduleMark, ...] = ()  # from the status, written by the controller

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Repository:
        metadata = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        secret = spec.get("secretRef") or {}
        app = spec.get("githubApp")
        concurrency = spec.get("concurrency") or {}
        return cls(
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            uid=str(metadata.get("uid", "")),
            forge=str(spec.get("forge", "")),
            url=str(spec.get("url", "")),
            api_url=spec.get("apiURL"),
            secret=SecretKeys(
                name=str(secret.get("name", "")),
                webhook_secret_key=str(secret.get("webhookSecretKey", "webhook-secret")),
                token_key=str(secret.get("tokenKey", "token")),
                private_key_key=str(secret.get("privateKeyKey", "private-key")),
            ),
            github_app=(
                GitHubApp(app_id=int(app["appID"]), installation_id=int(app["installationID"]))
                if app
                else None
            ),
            spec_path=str(spec.get("specPath", ".ci.yaml")),
            service_account=(
                str(spec["serviceAccountName"]) if spec.get("serviceAccountName") else None
            ),
            concurrency_limit=concurrency.get("limit"),
            cancel_in_progress=bool(concurrency.get("cancelInProgress", False)),
            keep_runs=int(spec.get("keepRuns", 20)),
            untrusted=UntrustedPolicy(
                spec.get("untrustedPullRequests", UntrustedPolicy.RUN_WITHOUT_SECRETS)
            ),
            private=bool(spec.get("private", False)),
            public_logs=bool(spec.get("publicLogs", False)),
            schedules=tuple(
                Schedule(name=str(entry["name"]), cron=str(entry["cron"]),
                         branch=str(entry["branch"]),
                         timezone=str(entry.get("timezone") or "UTC"))
                for entry in spec.get("schedules") or ()
            ),
            schedule_marks=tuple(
                ScheduleMark(name=str(entry["name"]), cron=str(entry.get("cron", "")),
                             last_time=str(entry["lastTime"]),
                             last_run_request=str(entry.get("lastRunRequest", "")))
                for entry in (obj.get("status") or {}).get("schedules") or ()
                if entry.get("lastTime")
            ),
        )


def normalize_url(url: str) -> str:
    """The form two spellings of one repository URL share: scheme and host lower-cased,
    no credentials, no trailing `/` or `.git`. Paths keep their case: GitLab's are
    case-sensitive."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.port:
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/")
    path = path.removesuffix(".git")
    return f"{parts.scheme.lower()}://{host}{path}"


@dataclass(frozen=True, slots=True)
class Conflict:
    """More than one Repository claims one URL."""

    url: str
    repositories: tuple[Repository, ...]

    def describe(self) -> str:
        names = ", ".join(sorted(repository.key for repository in self.repositories))
        return f"{len(self.repositories)} Repository objects claim {self.url}: {names}"


class RepositoryIndex:
    """Repositories by normalized URL; a `watching.Consumer`, safe to read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Repository] = {}
        self._by_url: dict[str, tuple[Repository, ...]] = {}
        self.synced = threading.Event()  # set after the first full list

    def on_relist(self, objects: Sequence[Mapping[str, Any]]) -> None:
        repositories = [_parse_or_none(obj) for obj in objects]
        with self._lock:
            self._by_key = {r.key: r for r in repositories if r is not None}
            self._rebuild()
        self.synced.set()

    def on_event(self, event: WatchEvent[Object]) -> None:
        repository = _parse_or_none(event.object)
        metadata = event.object.get("metadata") or {}
        key = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
        with self._lock:
            if event.type == EventType.DELETED or repository is None:
                self._by_key.pop(key, None)
            else:
                self._by_key[key] = repository
            self._rebuild()

    def lookup(self, url: str) -> Repository | Conflict | None:
        normalized = normalize_url(url)
        with self._lock:
            found = self._by_url.get(normalized, ())
        if not found:
            return None
        if len(found) > 1:
            return Conflict(normalized, found)
        return found[0]

    def namespaces(self) -> frozenset[str]:
        with self._lock:
            return frozenset(repository.namespace for repository in self._by_key.values())

    def get(self, namespace: str, name: str) -> Repository | None:
        with self._lock:
            return self._by_key.get(f"{namespace}/{name}")

    def for_run(self, url: str | None, namespace: str) -> Repository | None:
        """The Repository a run in `namespace` with this URL belongs to: only ever one of its
        own namespace, whatever another namespace claims."""
        if not url:
            return None
        found = self.lookup(url)
        if isinstance(found, Conflict):
            candidates = [r for r in found.repositories if r.namespace == namespace]
            return candidates[0] if len(candidates) == 1 else None
        if found is None or found.namespace != namespace:
            return None
        return found

    def all(self) -> tuple[Repository, ...]:
        with self._lock:
            return tuple(self._by_key.values())

    def _rebuild(self) -> None:
        by_url: dict[str, list[Repository]] = {}
        for repository in sorted(self._by_key.values(), key=lambda r: r.key):
            by_url.setdefault(normalize_url(repository.url), []).append(repository)
        self._by_url = {url: tuple(found) for url, found in by_url.items()}


def _parse_or_none(obj: Mapping[str, Any]) -> Repository | None:
    # The CRD's schema makes a malformed object unlikely; one that still slips through (an
    # older CRD version) is left out rather than taking the whole index down.
    try:
        return Repository.from_object(obj)
    except (KeyError, TypeError, ValueError):
        return None
