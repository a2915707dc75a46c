"""The one table of forge providers: detect a delivery's forge, then use its functions.

Adding a forge is a new folder and a new row here. Elsewhere code branches on the kind of a
Repository's credentials, never on the forge's name: a GitHub App's (`GitHubAppCredentials`)
report with check runs and mint installation tokens, a token's with commit statuses.
Detection functions are mutually exclusive (GitHub's ignores Gitea's GitHub-compatible
headers), so the table's order does not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import httpx

from ci.forges.client import Credentials, ForgeClient
from ci.forges.deliveries import Delivery
from ci.forges.gitea import client as gitea_client
from ci.forges.gitea import webhook as gitea_webhook
from ci.forges.github import client as github_client
from ci.forges.github import webhook as github_webhook
from ci.forges.gitlab import client as gitlab_client
from ci.forges.gitlab import webhook as gitlab_webhook
from ci.forges.types import ForgeKind, RepositoryRef

Headers = Mapping[str, str]


class ClientFactory:
    """Builds a provider's client; a class so the table stays data, not lambdas."""

    def __init__(self, build: Callable[..., ForgeClient]) -> None:
        self._build = build

    def __call__(
        self, http: httpx.AsyncClient, *, api_url: str, credentials: Credentials
    ) -> ForgeClient:
        return self._build(http, api_url=api_url, credentials=credentials)


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    kind: ForgeKind
    detect: Callable[[Headers], bool]
    """Cheap, from headers only."""
    locate: Callable[[Headers, bytes], RepositoryRef | None]
    """The repository a delivery is about, before verification (to find its secret)."""
    verify: Callable[[Headers, bytes, str | bytes | None], None]
    """Raises `SignatureError`; a missing secret or signature is a rejection."""
    parse: Callable[[Headers, bytes], Delivery]
    """Raises only `PayloadError`."""
    default_api_url: Callable[[str], str]
    """The API base URL for a repository web URL (override for sub-path installs)."""
    client: ClientFactory


PROVIDERS: Mapping[ForgeKind, Provider] = MappingProxyType(
    {
        ForgeKind.GITHUB: Provider(
            kind=ForgeKind.GITHUB,
            detect=github_webhook.detect,
            locate=github_webhook.locate,
            verify=github_webhook.verify,
            parse=github_webhook.parse,
            default_api_url=github_client.default_api_url,
            client=ClientFactory(github_client.GitHubClient),
        ),
        ForgeKind.GITEA: Provider(
            kind=ForgeKind.GITEA,
            detect=gitea_webhook.detect,
            locate=gitea_webhook.locate,
            verify=gitea_webhook.verify,
            parse=gitea_webhook.parse,
            default_api_url=gitea_client.default_api_url,
            client=ClientFactory(gitea_client.GiteaClient),
        ),
        ForgeKind.GITLAB: Provider(
            kind=ForgeKind.GITLAB,
            detect=gitlab_webhook.detect,
            locate=gitlab_webhook.locate,
            verify=gitlab_webhook.verify,
            parse=gitlab_webhook.parse,
            default_api_url=gitlab_client.default_api_url,
            client=ClientFactory(gitlab_client.GitLabClient),
        ),
    }
)


def detect_forge(headers: Headers) -> Provider | None:
    """The provider whose headers these are, or None (answer 400: not a forge delivery)."""
    for provider in PROVIDERS.values():
        if provider.detect(headers):
            return provider
    return None


def provider_for(kind: ForgeKind | str) -> Provider:
    """The provider a `Repository` object names; ValueError for an unknown forge."""
    return PROVIDERS[ForgeKind(kind)]
