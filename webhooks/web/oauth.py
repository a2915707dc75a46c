"""OAuth2 with each forge (authorization code flow with PKCE): where to send the browser,
trading the code for the person's access token, and asking the forge who they are.

| forge         | authorize                 | token                        | who am I          |
|---------------|---------------------------|------------------------------|-------------------|
| GitHub        | `/login/oauth/authorize`  | `/login/oauth/access_token`  | `GET /user`       |
| Gitea/Forgejo | `/login/oauth/authorize`  | `/login/oauth/access_token`  | `GET /api/v1/user`|
| GitLab        | `/oauth/authorize`        | `/oauth/token`               | `GET /api/v4/user`|

The token is the person's own: `webhooks.web.access` asks the forge with it what they may
read and write. It is never logged and never put on a page.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from ci.forges.registry import provider_for
from ci.settings import SignInProvider

log = structlog.get_logger(__name__)

# What each forge is asked for. GitHub: `repo` is what an OAuth App needs to see a private
# repository's permissions (a GitHub App ignores scopes: its own permissions apply). Gitea:
# read-only scopes (Gitea grants everything when it does not enforce OAuth scopes). GitLab:
# `read_api` covers `GET /projects/:id` (`read_user` alone does not).
SCOPES = {"github": "repo", "gitea": "read:user read:repository", "gitlab": "read_api"}
_AUTHORIZE = {"github": "/login/oauth/authorize", "gitea": "/login/oauth/authorize",
              "gitlab": "/oauth/authorize"}
_TOKEN = {"github": "/login/oauth/access_token", "gitea": "/login/oauth/access_token",
          "gitlab": "/oauth/token"}
GITHUB_API_VERSION = "2022-11-28"


class OAuthError(Exception):
    """The forge refused or failed the sign-in; the message is safe to show and log."""


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def host_of(url: str) -> str:
    """`host[:port]`, lower-cased: what a provider and a repository must share."""
    parts = urllib.parse.urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


@dataclass(frozen=True, slots=True)
class Grant:
    """What the token endpoint gave: the access token, and for how long it is valid (GitLab's
    last 2 hours, a GitHub App's user tokens 8; None: until revoked)."""

    token: str = field(repr=False)
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class OAuthProvider:
    """One configured sign-in provider (`web.providers[]`)."""

    settings: SignInProvider
    http: httpx.AsyncClient

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def forge(self) -> str:
        return self.settings.forge

    @property
    def web_url(self) -> str:
        return self.settings.url.rstrip("/")

    @property
    def api_url(self) -> str:
        configured = self.settings.api_url
        if configured:
            return configured.rstrip("/")
        return provider_for(self.forge).default_api_url(self.web_url).rstrip("/")

    def authorize_url(self, *, redirect_uri: str, state: str, challenge: str) -> str:
        query = urllib.parse.urlencode({
            "client_id": self.settings.client_id, "redirect_uri": redirect_uri,
            "response_type": "code", "scope": SCOPES[self.forge], "state": state,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        return f"{self.web_url}{_AUTHORIZE[self.forge]}?{query}"

    async def exchange(self, *, code: str, redirect_uri: str, verifier: str) -> Grant:
        """The access token for an authorization `code`."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret, "code_verifier": verifier}
        try:
            answer = await self.http.post(f"{self.web_url}{_TOKEN[self.forge]}", data=form,
                                          headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise OAuthError(f"{self.name} did not answer the token request: "
                             f"{type(error).__name__}") from None
        body = _json(answer)
        # GitHub answers a refused code with 200 and an `error` field.
        if answer.status_code != 200 or "error" in body:
            reason = str(body.get("error") or answer.status_code)
            log.warning("the forge refused the sign-in code", provider=self.name, reason=reason)
            raise OAuthError(f"{self.name} refused the sign-in ({reason}); try again")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise OAuthError(f"{self.name} answered the token request without a token")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            return Grant(token=token)
        return Grant(token=token, seconds=float(lifetime))

    async def login(self, token: str) -> str:
        """The forge's user name of the token's owner."""
        answer = await self.get(token, "/user")
        body = _json(answer) if answer is not None else {}
        field = "username" if self.forge == "gitlab" else "login"
        login = body.get(field)
        if answer is None or answer.status_code != 200 or not isinstance(login, str) or not login:
            raise OAuthError(f"{self.name} did not say who signed in")
        return login

    async def get(self, token: str, path: str) -> httpx.Response | None:
        """`GET` an API path as the token's owner; None if the forge could not be reached."""
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if self.forge == "github":
            headers["Accept"] = "application/vnd.github+json"
            headers["X-GitHub-Api-Version"] = GITHUB_API_VERSION
        try:
            return await self.http.get(f"{self.api_url}{path}", headers=headers)
        except httpx.HTTPError as error:
            log.warning("the forge did not answer", provider=self.name, path=path,
                        error=type(error).__name__)
            return None


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
