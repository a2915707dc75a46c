"""The sign-in routes: the providers page, off to the forge, back with a code, sign-out; and
the return URL, which must never lead off this site."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import httpx2  # Starlette's TestClient answers with httpx2's Response
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request
from structlog.testing import capture_logs

from tests.unit.web.forges import CLIENT_ID, TOKEN, WEB_URL, OAuthForge, provider_settings
from webhooks.web import signin
from webhooks.web.oauth import SCOPES, OAuthProvider
from webhooks.web.sessions import SESSION_COOKIE, SIGNIN_COOKIE, SessionCookies
from webhooks.web.signin import SignIn, local_next, templates

PUBLIC_URL = "https://ferry.example"


class Site:
    def __init__(self, forge: OAuthForge) -> None:
        self.forge = forge
        self.sessions = SessionCookies(key="k" * 40, hours=12, secure=True)
        http = httpx.AsyncClient(transport=forge.transport())
        provider = OAuthProvider(provider_settings(forge.forge), http)
        app = FastAPI()
        app.include_router(signin.router)
        app.state.runtime = SimpleNamespace(signin=SignIn(
            sessions=self.sessions, providers={provider.name: provider}, public_url=PUBLIC_URL,
            templates=templates()))
        self.client = TestClient(app, base_url=PUBLIC_URL, follow_redirects=False)

    def start(self, next_url: str | None = None) -> httpx2.Response:
        params = {"next": next_url} if next_url is not None else {}
        return self.client.get(f"/ui/signin/{self.forge.forge}", params=params)

    def sign_in(self, next_url: str | None = None) -> httpx2.Response:
        started = self.start(next_url)
        assert started.status_code == 303
        return self.client.get(self.forge.grant(started.headers["location"]))

    def as_request(self) -> Request:
        """A request of this browser to a page (with its session cookie, if any)."""
        value = self.client.cookies.get(SESSION_COOKIE, path="/ui")
        cookie = [(b"cookie", f"{SESSION_COOKIE}={value}".encode())] if value else []
        return Request({"type": "http", "method": "GET", "path": "/ui/", "query_string": b"",
                        "headers": cookie})

    def viewer_login(self) -> str | None:
        viewer = self.sessions.viewer(self.as_request())
        return viewer.login if viewer else None


@pytest.fixture(params=["github", "gitea", "gitlab"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    made = Site(OAuthForge(forge=request.param, login="alice"))
    with made.client:
        yield made


def test_the_page_lists_each_provider_as_a_sign_in_link(site: Site) -> None:
    page = site.client.get("/ui/signin", params={"next": "/ui/team/app"})
    assert page.status_code == 200
    name = site.forge.forge
    assert f'<a class="signin" data-provider="{name}"' in page.text
    assert f'href="/ui/signin/{name}?next=%2Fui%2Fteam%2Fapp"' in page.text


def test_signing_in_goes_to_the_forge_and_back_to_the_page_asked_for(site: Site) -> None:
    started = site.start("/ui/team/app/runs/r1?state=failed")
    location = urllib.parse.urlsplit(started.headers["location"])
    query = dict(urllib.parse.parse_qsl(location.query))
    forge = site.forge.forge
    authorize = {"github": "/login/oauth/authorize", "gitea": "/login/oauth/authorize",
                 "gitlab": "/oauth/authorize"}[forge]
    assert f"{location.scheme}://{location.netloc}{location.path}" == WEB_URL[forge] + authorize
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{PUBLIC_URL}/ui/signin/{forge}/callback"
    assert query["response_type"] == "code" and query["scope"] == SCOPES[forge]
    assert len(query["state"]) >= 32 and query["code_challenge_method"] == "S256"
    assert SIGNIN_COOKIE in started.headers["set-cookie"]
    back = site.client.get(site.forge.grant(started.headers["location"]))
    assert back.status_code == 303
    assert back.headers["location"] == "/ui/team/app/runs/r1?state=failed"
    # The next page cannot learn the code from the Referer; nothing is cached.
    assert back.headers["referrer-policy"] == "no-referrer"
    assert back.headers["cache-control"] == "no-store"
    assert site.viewer_login() == "alice"
    # The session lasts session_hours, or as long as the forge's token if that is shorter.
    lasts = {"gitlab": "7200"}.get(forge, str(12 * 3600))
    assert f"{SESSION_COOKIE}=" in back.headers["set-cookie"]
    assert f"Max-Age={lasts};" in back.headers["set-cookie"].split(f"{SESSION_COOKIE}=", 1)[1]
    # The token went only into the sealed cookie: not into a header or a page in clear.
    assert TOKEN not in str(back.headers) and TOKEN not in back.text


def test_a_callback_in_another_browser_is_refused(site: Site) -> None:
    started = site.start()
    callback = site.forge.grant(started.headers["location"])
    with TestClient(site.client.app, base_url=PUBLIC_URL, follow_redirects=False) as other:
        answer = other.get(callback)
    assert answer.status_code == 400
    assert "not started in this browser" in answer.text
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    assert not site.forge.requests  # the code was never traded


def test_a_callback_with_another_state_is_refused(site: Site) -> None:
    started = site.start()
    callback = site.forge.grant(started.headers["location"])
    forged = callback.replace("state=", "state=x")
    answer = site.client.get(forged)
    assert answer.status_code == 400 and site.viewer_login() is None


def test_a_person_who_does_not_grant_is_told_so(site: Site) -> None:
    started = site.start()
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
        started.headers["location"]).query))["state"]
    answer = site.client.get(f"/ui/signin/{site.forge.forge}/callback",
                             params={"error": "access_denied", "state": state})
    assert answer.status_code == 403 and "access_denied" in answer.text
    assert site.viewer_login() is None


def test_a_refused_code_is_a_clear_page_not_a_session_and_no_secret_is_logged(site: Site) -> None:
    site.forge.refuse_codes = True
    with capture_logs() as logs:
        answer = site.sign_in()
    assert answer.status_code == 502 and "refused the sign-in" in answer.text
    assert site.viewer_login() is None
    assert "client-secret" not in str(logs)


def test_unknown_providers_are_404(site: Site) -> None:
    assert site.client.get("/ui/signin/nowhere").status_code == 404
    assert site.client.get("/ui/signin/nowhere/callback?code=c&state=s").status_code == 404
    assert site.client.get("/ui/signin/NOT..valid").status_code == 422


def test_sign_out_needs_the_sessions_csrf_token(site: Site) -> None:
    site.sign_in()
    assert site.viewer_login() == "alice"
    refused = site.client.post("/ui/signout", data={"csrf": "0" * 64})
    assert refused.status_code == 403 and site.viewer_login() == "alice"
    assert site.client.post("/ui/signout").status_code == 403
    token = site.sessions.csrf_token(site.as_request())
    out = site.client.post("/ui/signout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == "/ui/"
    assert site.viewer_login() is None


@pytest.mark.parametrize("value", [
    "/ui/", "/ui", "/ui/team/app", "/ui/team/app/runs/r1/jobs/build?x=1#build-L3",
])
def test_local_pages_are_where_a_sign_in_returns(value: str) -> None:
    assert local_next(value) == value


@pytest.mark.parametrize("value", [
    None, "", "https://evil.example/ui/", "//evil.example/ui/", "/\\evil.example",
    "\\\\evil.example", "/ui\\..\\evil", "/ui//evil.example", "/ui/..//evil.example",
    "/ui/../api/v1/repositories", "/ui/%2e%2e/api", "/ui/%2F%2Fevil.example", "/uix/",
    "/api/v1", "javascript:alert(1)", " /ui/", "/ui/\t/x", "/ui/\n", "/ui/é",
    "http:/ui/", "/ui/" + "a" * 3000,
])
def test_anything_else_returns_home(value: str | None) -> None:
    assert local_next(value) == "/ui/"


def test_a_bad_return_url_signs_in_and_goes_home() -> None:
    made = Site(OAuthForge(forge="gitea", login="bob"))
    with made.client:
        back = made.sign_in("//evil.example/")
        assert back.headers["location"] == "/ui/"
        page = made.client.get("/ui/signin", params={"next": "https://evil.example"})
        assert "evil" not in page.text
