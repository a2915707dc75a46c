from collections.abc import Mapping

import pytest

from ci.forges.client import GitHubAppCredentials, TokenCredentials
from ci.kube.credentials import CredentialsCache
from ci.kube.errors import CredentialsError
from ci.kube.repositories import Repository


def _repository(**spec: object) -> Repository:
    return Repository.from_object(
        {
            "metadata": {"name": "shop", "namespace": "team-a", "uid": "u"},
            "spec": {
                "forge": "github",
                "url": "https://github.com/acme/shop",
                "secretRef": {"name": "creds"},
                **spec,
            },
        }
    )


class FakeSecrets:
    def __init__(self, data: dict[tuple[str, str], dict[str, str]]) -> None:
        self.data = data
        self.reads = 0

    def __call__(self, namespace: str, name: str) -> Mapping[str, str] | None:
        self.reads += 1
        return self.data.get((namespace, name))


def test_token_mode_reads_webhook_secret_and_token_without_trailing_newline() -> None:
    secrets = FakeSecrets({("team-a", "creds"): {"webhook-secret": "hush\n", "token": "tok\n"}})
    credentials = CredentialsCache(secrets).for_repository(_repository())
    assert credentials.webhook_secret == "hush"
    assert credentials.forge == TokenCredentials("tok")
    assert "hush" not in repr(credentials) and "tok" not in repr(credentials)


def test_app_mode_needs_the_private_key() -> None:
    secrets = FakeSecrets({("team-a", "creds"): {"webhook-secret": "hush"}})
    repository = _repository(githubApp={"appID": 1, "installationID": 2})
    with pytest.raises(CredentialsError, match="private-key"):
        CredentialsCache(secrets).for_repository(repository)
    secrets.data[("team-a", "creds")]["private-key"] = "PEM"
    credentials = CredentialsCache(secrets).for_repository(repository)
    assert isinstance(credentials.forge, GitHubAppCredentials)
    assert credentials.forge.installation_id == 2


def test_missing_secret_is_a_clear_error() -> None:
    with pytest.raises(CredentialsError, match="team-a/creds does not exist"):
        CredentialsCache(FakeSecrets({})).for_repository(_repository())


def test_missing_webhook_secret_is_none_so_the_receiver_rejects() -> None:
    secrets = FakeSecrets({("team-a", "creds"): {"token": "t"}})
    assert CredentialsCache(secrets).for_repository(_repository()).webhook_secret is None


def test_reads_are_cached_for_ttl_then_refreshed() -> None:
    now = [0.0]
    secrets = FakeSecrets({("team-a", "creds"): {"webhook-secret": "one"}})
    cache = CredentialsCache(secrets, ttl=30, clock=lambda: now[0])
    assert cache.for_repository(_repository()).webhook_secret == "one"
    secrets.data[("team-a", "creds")]["webhook-secret"] = "two"
    now[0] = 29
    assert cache.for_repository(_repository()).webhook_secret == "one"
    assert secrets.reads == 1
    now[0] = 31
    assert cache.for_repository(_repository()).webhook_secret == "two"


def test_the_cached_answer_never_reads_and_ends_with_the_ttl() -> None:
    secrets = FakeSecrets({("team-a", "creds"): {"token": "t"}})
    now = [0.0]
    cache = CredentialsCache(secrets, ttl=30, clock=lambda: now[0])
    assert cache.cached(_repository()) is None  # never read: the caller reads in a thread
    assert cache.for_repository(_repository()).forge == TokenCredentials("t")
    now[0] = 29.0
    cached = cache.cached(_repository())
    assert cached is not None and cached.forge == TokenCredentials("t")
    now[0] = 31.0
    assert cache.cached(_repository()) is None
    assert secrets.reads == 1
