"""A forge's OAuth2 and API endpoints for the sign-in's unit tests, as an httpx transport.

The API calls the sign-in makes (who am I, may this person read the repository) are checked
against the forge's API description (GitHub's whole REST description; GitLab's file written
from its docs) and answered, for GitHub, with the description's own published examples. The
OAuth2 endpoints are outside the REST descriptions: they are answered as the forges document
them (form in, JSON out; GitHub refuses a code with 200 and an `error` field).
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx

from ci.forges.types import ForgeKind
from ci.settings import SignInProvider
from tests.contracts import CONTRACTS
from tests.fakeforge.validation import problems

CLIENT_ID = "client-id-1"
CLIENT_SECRET = "client-secret-1"
TOKEN = "gho_the-persons-token-0123456789"
API_PREFIX = {"github": "", "gitea": "/api/v1", "gitlab": "/api/v4"}
WEB_URL = {"github": "https://github.com", "gitea": "https://gitea.example",
           "gitlab": "https://gitlab.example"}
API_URL = {"github": "https://api.github.com", "gitea": "https://gitea.example/api/v1",
           "gitlab": "https://gitlab.example/api/v4"}
TOKEN_PATH = {"github": "/login/oauth/access_token", "gitea": "/login/oauth/access_token",
              "gitlab": "/oauth/token"}
_DESCRIBED = {"github": ForgeKind.GITHUB, "gitlab": ForgeKind.GITLAB}


@cache
def github_example(path: str, name: str | None = None) -> dict[str, Any]:
    """The first (or `name`d) example GitHub's description publishes for `GET path`'s 200."""
    document = json.loads((CONTRACTS / "github" / "full" / "api.github.com.json").read_bytes())
    content = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    examples = content["examples"]
    example = examples[name] if name else next(iter(examples.values()))
    if "$ref" in example:
        example = document["components"]["examples"][example["$ref"].rsplit("/", 1)[-1]]
    value: dict[str, Any] = example["value"]
    return value


def provider_settings(forge: str, *, name: str | None = None) -> SignInProvider:
    return SignInProvider(name=name or forge, forge=forge,  # type: ignore[arg-type]
                          url=WEB_URL[forge], client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@dataclass
class OAuthForge:
    """One forge: a login, the repositories it answers for, and what it was asked."""

    forge: str
    login: str = "octocat"
    repositories: dict[str, dict[str, Any]] = field(default_factory=dict)  # API path: body
    status: int | None = None  # answer every API call with this (a failing forge)
    refuse_codes: bool = False
    challenges: dict[str, str] = field(default_factory=dict)  # code: PKCE challenge
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def grant(self, authorize_url: str) -> str:
        """What the forge's authorize page does after the person grants: a code for the
        challenge it was given, sent back to the redirect URI with the state."""
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(authorize_url).query))
        assert query["code_challenge_method"] == "S256"
        code = f"code-{len(self.challenges)}"
        self.challenges[code] = query["code_challenge"]
        back = urllib.parse.urlencode({"code": code, "state": query["state"]})
        return f"{query['redirect_uri']}?{back}"

    def api_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if not r.url.path.startswith(("/login", "/oauth"))]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "POST" and request.url.path == TOKEN_PATH[self.forge]:
            return self._token(request)
        described = _DESCRIBED.get(self.forge)
        if described is not None:
            problem = problems(described, method=request.method,
                               raw_path=request.url.raw_path.decode().split("?")[0],
                               query=list(request.url.params.multi_items()),
                               headers=list(request.headers.items()), body=request.content)
            assert problem is None, problem
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        if self.status is not None:
            return httpx.Response(self.status, json={"message": "failing"})
        path = request.url.raw_path.decode().removeprefix(API_PREFIX[self.forge])
        if path == "/user":
            if self.forge == "github":
                return httpx.Response(200, json={**github_example("/user"), "login": self.login})
            key = "username" if self.forge == "gitlab" else "login"
            return httpx.Response(200, json={"id": 7, key: self.login})
        if path in self.repositories:
            return httpx.Response(200, json=self.repositories[path])
        return httpx.Response(404, json={"message": "Not Found"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = dict(urllib.parse.parse_qsl(request.content.decode()))
        assert form["client_id"] == CLIENT_ID and form["client_secret"] == CLIENT_SECRET
        assert form["grant_type"] == "authorization_code"
        challenge = self.challenges.get(form.get("code", ""))
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if self.refuse_codes or challenge is None or challenge != expected:
            if self.forge == "github":
                return httpx.Response(200, json={"error": "bad_verification_code"})
            return httpx.Response(400, json={"error": "invalid_grant"})
        answer: dict[str, Any] = {"access_token": TOKEN, "token_type": "bearer", "scope": "repo"}
        if self.forge == "gitlab":  # GitLab's tokens last 2 hours (and come with a refresh)
            answer.update(expires_in=7200, refresh_token="r", created_at=1_700_000_000)
        return httpx.Response(200, json=answer)
