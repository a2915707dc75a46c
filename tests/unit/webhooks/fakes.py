"""Test doubles and helpers for the receiver: a recording backend, signing, settings."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci.backends import PreviousRun, RunRequest, SubmittedRun
from ci.forges.types import ForgeKind
from ci.kube.repositories import Repository
from ci.settings import LocalRepository, LocalSettings, Settings, WebhookSettings
from pipelines.names import pipeline_run_name
from tests.contracts import CONTRACTS as _CONTRACTS
from tests.fakeforge.descriptions import API_PREFIXES

SECRET = "hook-secret-for-tests"
TOKEN = "test-token"
CONTRACTS = _CONTRACTS
SPEC = """\
jobs:
  test:
    image: alpine
    secrets:
      API_KEY: deploy/key
    steps:
      - run: echo hello
"""


@dataclass
class RecordingBackend:
    """Records every call; `fail_with` makes `submit` raise (an unreachable API server).
    Its runs are reported by someone else, as both real backends' are, unless a test says
    `reports_runs = False`."""

    requests: list[RunRequest] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    closed: list[tuple[str, int]] = field(default_factory=list)
    cancelled_runs: list[tuple[str, str]] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    fail_with: Exception | None = None
    reports_runs: bool = True
    # What `newest_run` answers, by commit; and what it was asked (sha, pull request).
    previous: dict[str, PreviousRun] = field(default_factory=dict)
    asked: list[tuple[str, int | None]] = field(default_factory=list)

    async def submit(self, request: RunRequest) -> SubmittedRun:
        if self.fail_with is not None:
            raise self.fail_with
        name = pipeline_run_name(request.event, prefix=request.name_prefix)
        created = name not in self.names
        self.names.add(name)
        self.requests.append(request)
        return SubmittedRun(name=name, created=created)

    async def cancel_superseded(self, request: RunRequest, *, newest: str) -> tuple[str, ...]:
        self.superseded.append(newest)
        return ("older-run",)

    async def cancel_pull_request(self, repository: Repository, number: int) -> tuple[str, ...]:
        self.closed.append((repository.key, number))
        return (f"run-of-{number}",)

    async def cancel_run(self, repository: Repository, name: str) -> bool:
        self.cancelled_runs.append((repository.key, name))
        return True

    async def newest_run(
        self, repository: Repository, sha: str, *, pull_request: int | None = None
    ) -> PreviousRun | None:
        self.asked.append((sha, pull_request))
        found = self.previous.get(sha)
        if found is None or pull_request not in (None, found.pull_request):
            return None
        return found

    async def ready(self) -> str | None:
        return None


def api_url(kind: ForgeKind) -> str:
    return f"http://{kind.value}.fake{API_PREFIXES[kind]}"


def local_repository(kind: ForgeKind, url: str, **overrides: Any) -> LocalRepository:
    values: dict[str, Any] = {
        "forge": kind.value,
        "url": url,
        "api_url": api_url(kind),
        "webhook_secret": SECRET,
        "token": TOKEN,
    }
    return LocalRepository(**(values | overrides))


def settings_for(
    state: Path,
    repositories: list[LocalRepository],
    *,
    local: Mapping[str, Any] | None = None,
    **webhooks: Any,
) -> Settings:
    return Settings(
        webhooks=WebhookSettings(**webhooks),
        local=LocalSettings(
            repositories=tuple(repositories), state_directory=state, **(local or {})
        ),
    )


def signed_headers(
    kind: ForgeKind, body: bytes, headers: dict[str, str], *, secret: str = SECRET
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if kind is ForgeKind.GITHUB:
        return headers | {"X-Hub-Signature-256": f"sha256={digest}"}
    if kind is ForgeKind.GITEA:
        return headers | {"X-Gitea-Signature": digest}
    return headers | {"X-Gitlab-Token": secret}


def github_headers(event: str, delivery: str = "delivery-1") -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


def contract(kind: ForgeKind, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONTRACTS / kind.value / "webhooks" / name).read_bytes())
    return data


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
