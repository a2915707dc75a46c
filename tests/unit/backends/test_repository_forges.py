"""The one seam for forge clients (`ci.repository_forges` over `ci.forges.connections`): one
connection per Repository and credentials, its report mode, what to mask, and a clone token
that is the client's own cached installation token, not a new one per delivery."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ci.forges.connections import ReportMode
from ci.forges.statuses import Conclusion, Status
from ci.forges.types import ForgeKind, RepositoryName
from ci.kube.credentials import CredentialsCache
from ci.kube.repositories import Repository
from ci.logs import Redactor
from ci.repository_forges import RepositoryForges
from tests.fakeforge import FakeForge
from tests.fakeforge.connecting import connected

pytestmark = pytest.mark.anyio
SHA = "a" * 40


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def repository(forge: FakeForge, *, app: bool, uid: str = "uid-1") -> Repository:
    spec: dict[str, object] = {
        "forge": forge.kind.value, "url": "https://github.com/acme/app",
        "apiURL": forge.api_url, "secretRef": {"name": "app-forge"}, "private": True,
    }
    if app:
        spec["githubApp"] = {"appID": 4242, "installationID": 7}
    return Repository.from_object(
        {"metadata": {"namespace": "team", "name": "app", "uid": uid}, "spec": spec})


class Secrets:
    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = dict(data)
        self.reads = 0

    def __call__(self, namespace: str, name: str) -> Mapping[str, str]:
        self.reads += 1
        return self.data


async def test_an_apps_clone_token_is_the_cached_installation_token(
    app_keys: tuple[str, str],
) -> None:
    forge = FakeForge(ForgeKind.GITHUB, tokens=set(), app_id="4242",
                      app_public_key=app_keys[1])
    secrets = Secrets({"webhook-secret": "hook-secret", "private-key": app_keys[0]})
    redactor = Redactor()
    async with connected(forge) as http:
        forges = RepositoryForges(CredentialsCache(secrets), http, redactor=redactor)
        tokens = []
        for _ in range(3):  # three deliveries of one private repository
            access = await forges.for_repository(repository(forge, app=True))
            assert access.connection is not None
            tokens.append(await forges.clone_token(access.connection))
        await access.connection.client.report_status(
            RepositoryName("acme/app"), SHA,
            Status(conclusion=Conclusion.RUNNING, context="ferry", title="running"))
    assert len(set(tokens)) == 1 and len(forge.installation_tokens) == 1  # minted once
    assert access.connection.mode is ReportMode.CHECK_RUNS
    shown = redactor.mask(f"{tokens[0]} {app_keys[0]} hook-secret")
    assert tokens[0] not in shown and "hook-secret" not in shown
    assert "BEGIN PRIVATE KEY" not in shown


async def test_one_connection_per_repository_until_its_credentials_change() -> None:
    forge = FakeForge(ForgeKind.GITHUB)
    secrets = Secrets({"webhook-secret": "hook-secret", "token": "test-token"})
    async with connected(forge) as http:
        forges = RepositoryForges(CredentialsCache(secrets, ttl=0.0), http)
        first = await forges.for_repository(repository(forge, app=False))
        again = await forges.for_repository(repository(forge, app=False))
        assert first.connection is not None and first.connection is again.connection
        assert first.connection.mode is ReportMode.COMMIT_STATUS
        assert await forges.clone_token(first.connection) == "test-token"
        assert set(first.masked) == {"hook-secret", "test-token"}
        secrets.data["token"] = "rotated-token"
        rotated = await forges.for_repository(repository(forge, app=False))
        remade = await forges.for_repository(repository(forge, app=False, uid="uid-2"))
    assert rotated.connection is not None and rotated.connection is not first.connection
    assert await forges.clone_token(rotated.connection) == "rotated-token"
    assert remade.connection is not rotated.connection  # a Repository made again


async def test_a_secret_without_api_credentials_has_no_connection() -> None:
    forge = FakeForge(ForgeKind.GITEA)
    async with connected(forge) as http:
        forges = RepositoryForges(CredentialsCache(Secrets({"webhook-secret": "s"})), http)
        access = await forges.for_repository(repository(forge, app=False))
    assert access.connection is None and access.webhook_secret == "s"
