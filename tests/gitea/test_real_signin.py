"""Signing in with the real Gitea as the OAuth2 provider, end to end: Ferry's sign-in routes
send the browser to Gitea, the person logs in on Gitea's own form and grants, Gitea sends them
back with a code, Ferry trades it (with PKCE) for their token and asks Gitea who they are; then
Ferry's access check asks Gitea, with that token, what they may do with a private repository.

The browser is httpx (tests/gitea/oauth.py drives Gitea's forms); the same flow in Chromium is
in the browser tests.
"""

from __future__ import annotations

import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace

import httpx
import httpx2  # Starlette's TestClient answers with httpx2's Response
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from ci.kube.repositories import Repository, SecretKeys
from ci.settings import KubernetesSettings, Settings, SignInProvider, WebSettings
from tests.cluster.control_plane import ControlPlane
from tests.cluster.processes import free_port, wait_until
from tests.cluster.resources import Kube
from tests.gitea.api import GiteaApi, User
from tests.gitea.oauth import (
    OAuthApp,
    People,
    authorize,
    create_oauth_app,
    create_people,
    revoke_access,
)
from tests.gitea.server import GiteaServer
from webhooks.app import create_app
from webhooks.web import signin as signin_routes
from webhooks.web.identity import WebSide
from webhooks.wiring import open_web

CACHE_SECONDS = 1.0


@dataclass
class Setup:
    gitea: GiteaServer
    people: People
    oauth: OAuthApp
    app: FastAPI
    public_url: str
    repository: Repository
    settings: Settings


def receiver_app(settings: Settings, repository: Repository) -> FastAPI:
    """The sign-in routes as the receiver wires them (`open_web`), and one page that says
    what the signed-in viewer may do with `repository`, through the pages' contract."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=30.0, follow_redirects=False) as http:
            web, signin = open_web(settings, http)
            app.state.runtime = SimpleNamespace(web=web, signin=signin)
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(signin_routes.router)

    @app.get("/ui/access")
    async def access(request: Request) -> JSONResponse:
        web: WebSide = request.app.state.runtime.web
        viewer = web.sessions.viewer(request)
        return JSONResponse({
            "login": viewer.login if viewer else None,
            "read": await web.access.may_read(viewer, repository),
            "write": await web.access.may_write(viewer, repository)})

    return app


@pytest.fixture
def setup(gitea: GiteaServer, gitea_api: GiteaApi) -> Setup:
    public_url = f"http://127.0.0.1:{free_port()}"
    people = create_people(gitea_api, prefix="signin")
    oauth = create_oauth_app(gitea_api, redirect_uri=f"{public_url}/ui/signin/gitea/callback")
    settings = Settings(web=WebSettings(
        public_url=public_url, session_key=secrets.token_urlsafe(40),
        access_cache_seconds=CACHE_SECONDS,
        providers=(SignInProvider(name="gitea", forge="gitea", url=gitea.url,
                                  client_id=oauth.client_id, client_secret=oauth.client_secret),)))
    repository = Repository(namespace="team", name="app", uid="u1", forge="gitea",
                            url=people.html_url, secret=SecretKeys(name="forge"))
    return Setup(gitea=gitea, people=people, oauth=oauth, app=receiver_app(settings, repository),
                 public_url=public_url, repository=repository, settings=settings)


@pytest.fixture
def browser(setup: Setup) -> Iterator[TestClient]:
    with TestClient(setup.app, base_url=setup.public_url, follow_redirects=False) as client:
        yield client


def sign_in(setup: Setup, browser: TestClient, user: User) -> httpx2.Response:
    """What a person's browser does: Ferry's sign-in link, Gitea's login and grant, back."""
    started = browser.get("/ui/signin/gitea", params={"next": "/ui/team/app"})
    assert started.status_code == 303, started.text
    assert started.headers["location"].startswith(f"{setup.gitea.url}/login/oauth/authorize?")
    callback = authorize(setup.gitea, user, started.headers["location"])
    assert callback.startswith(f"{setup.public_url}/ui/signin/gitea/callback?"), callback
    return browser.get(callback)


def test_a_reader_reads_a_writer_writes_a_stranger_sees_nothing(setup: Setup,
                                                                browser: TestClient) -> None:
    assert browser.get("/ui/access").json() == {"login": None, "read": False, "write": False}
    for user, read, write in [(setup.people.reader, True, False),
                              (setup.people.writer, True, True),
                              (setup.people.stranger, False, False)]:
        browser.cookies.clear()
        back = sign_in(setup, browser, user)
        assert back.status_code == 303, back.text
        assert back.headers["location"] == "/ui/team/app"
        assert browser.get("/ui/access").json() == {
            "login": user.name, "read": read, "write": write}, user.name


def test_a_reader_who_loses_access_loses_it_within_the_cache_time(
        setup: Setup, browser: TestClient, gitea_api: GiteaApi) -> None:
    assert sign_in(setup, browser, setup.people.reader).status_code == 303
    assert browser.get("/ui/access").json()["read"] is True
    revoke_access(gitea_api, setup.people.full_name, setup.people.reader)
    time.sleep(CACHE_SECONDS)  # the kept answer runs out (kept until then: tests/unit/web)
    assert browser.get("/ui/access").json() == {
        "login": setup.people.reader.name, "read": False, "write": False}


def test_a_code_from_another_sign_in_is_refused(setup: Setup, browser: TestClient) -> None:
    # Two sign-ins in one browser: the first one's code comes back with the second's cookie.
    first = browser.get("/ui/signin/gitea")
    callback = authorize(setup.gitea, setup.people.reader, first.headers["location"])
    browser.get("/ui/signin/gitea")
    answer = browser.get(callback)
    assert answer.status_code == 400
    assert browser.get("/ui/access").json()["login"] is None


def test_gitea_checks_the_pkce_verifier(setup: Setup, browser: TestClient) -> None:
    # The code and state of a real grant, traded with another verifier, as an attacker who
    # intercepted the redirect (without the sign-in cookie's verifier) would.
    started = browser.get("/ui/signin/gitea")
    callback = authorize(setup.gitea, setup.people.reader, started.headers["location"])
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]
    answer = httpx.post(f"{setup.gitea.url}/login/oauth/access_token", data={
        "grant_type": "authorization_code", "code": code, "client_id": setup.oauth.client_id,
        "client_secret": setup.oauth.client_secret, "redirect_uri": setup.oauth.redirect_uri,
        "code_verifier": secrets.token_urlsafe(48)}, headers={"Accept": "application/json"},
        timeout=30.0)
    assert answer.status_code == 400 and "access_token" not in answer.json()


def test_the_receiver_with_a_cluster_serves_it_and_public_logs_reach_it(
        setup: Setup, cluster: ControlPlane, kube: Kube, namespace: str) -> None:
    """The whole receiver (`create_app`, its cluster side watching real Repository objects):
    `spec.publicLogs` survives the API server's schema, anonymous viewers read only that
    repository, and a reader signed in through the receiver's own routes reads the other."""
    for name, url, public in [("app", setup.people.html_url, False),
                              ("open", f"{setup.people.html_url}-open", True)]:
        kube.create({"apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
                     "metadata": {"name": name, "namespace": namespace},
                     "spec": {"forge": "gitea", "url": url, "secretRef": {"name": "forge"},
                              **({"publicLogs": True} if public else {})}})
    settings = setup.settings.model_copy(update={
        "kubernetes": KubernetesSettings(kubeconfig=cluster.kubeconfig)})
    app = create_app(settings)

    async def probe(request: Request, name: str) -> JSONResponse:
        runtime = request.app.state.runtime
        found = {r.name: r for r in runtime.read.repositories() if r.namespace == namespace}
        web: WebSide = runtime.web
        viewer = web.sessions.viewer(request)
        return JSONResponse({"read": await web.access.may_read(viewer, found[name]),
                             "write": await web.access.may_write(viewer, found[name])})

    app.add_api_route("/ui/probe/{name}", probe)
    # First: the pages' `/ui/{namespace}/{repository}` would answer this path otherwise (the
    # probe stays under `/ui`, where the session cookie is sent).
    app.router.routes.insert(0, app.router.routes.pop())
    with TestClient(app, base_url=setup.public_url, follow_redirects=False) as browser:
        runtime = app.state.runtime
        assert runtime.web is not None and runtime.signin is not None
        wait_until(lambda: {r.name for r in runtime.read.repositories()
                            if r.namespace == namespace} == {"app", "open"},
                   what="the Repository watch", timeout=60)
        assert browser.get("/ui/probe/open").json() == {"read": True, "write": False}
        assert browser.get("/ui/probe/app").json() == {"read": False, "write": False}
        page = browser.get("/ui/signin")
        assert 'class="signin" data-provider="gitea"' in page.text
        assert sign_in(setup, browser, setup.people.reader).status_code == 303
        assert browser.get("/ui/probe/app").json() == {"read": True, "write": False}
