"""The real Gitea as an OAuth2 provider, for the sign-in tests (`tests/gitea/test_real_signin.py`)
and the browser tests: an OAuth2 application registered through Gitea's API, people with and
without access to a private repository, and the authorization code flow as a person's browser
does it (log in on Gitea's form, grant, follow the redirect), driven with httpx.

Keep the names stable: the browser tests import them.

    app = create_oauth_app(gitea_api, redirect_uri="http://127.0.0.1:PORT/ui/signin/gitea/callback")
    people = create_people(gitea_api, prefix="signin")  # a private repository, reader, ...
    callback = authorize(gitea_api.server, people.reader, authorize_url)  # the URL to GET
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

from tests.gitea.api import GiteaApi, User
from tests.gitea.server import GiteaServer

TIMEOUT_SECONDS = 60.0
# Redirects followed inside Gitea before it sends the browser back to the application.
MAX_HOPS = 10


@dataclass(frozen=True, slots=True)
class OAuthApp:
    """An OAuth2 application of the Gitea administrator (what `web.providers[]` is set to)."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str


@dataclass(frozen=True, slots=True)
class People:
    """A private repository (`full_name`, `html_url`) and three people: `writer` may push,
    `reader` may only read (a collaborator with read), `stranger` has no access at all."""

    full_name: str
    html_url: str
    writer: User
    reader: User
    stranger: User


def create_oauth_app(api: GiteaApi, *, redirect_uri: str, name: str | None = None) -> OAuthApp:
    """A confidential OAuth2 application that sends people back to `redirect_uri` (Gitea
    accepts any loopback port for a 127.0.0.1 redirect URI, but the tests give the exact one)."""
    created = api.request("POST", "/user/applications/oauth2", json={
        "name": name or f"ferry-{secrets.token_hex(3)}",
        "redirect_uris": [redirect_uri],
        "confidential_client": True,
    })
    return OAuthApp(client_id=str(created["client_id"]),
                    client_secret=str(created["client_secret"]), redirect_uri=redirect_uri)


def create_people(api: GiteaApi, *, prefix: str = "signin") -> People:
    """A private repository of a new organisation, with a writer, a reader and a stranger."""
    suffix = secrets.token_hex(3)
    org = f"{prefix}-{suffix}"
    api.create_org(org)
    repository = api.create_repo("app", org=org, private=True)
    full_name = str(repository["full_name"])
    writer = api.create_user(f"{prefix}-writer-{suffix}")
    reader = api.create_user(f"{prefix}-reader-{suffix}")
    stranger = api.create_user(f"{prefix}-stranger-{suffix}")
    grant_access(api, full_name, writer, "write")
    grant_access(api, full_name, reader, "read")
    return People(full_name=full_name, html_url=str(repository["html_url"]), writer=writer,
                  reader=reader, stranger=stranger)


def grant_access(api: GiteaApi, full_name: str, user: User, permission: str) -> None:
    """Make `user` a collaborator of `full_name` with `permission` (read, write or admin)."""
    api.add_collaborator(full_name, user.name, permission)


def revoke_access(api: GiteaApi, full_name: str, user: User) -> None:
    """Remove `user` from the collaborators of `full_name`."""
    api.request("DELETE", f"/repos/{full_name}/collaborators/{user.name}")


def log_in(server: GiteaServer, user: User) -> httpx.Client:
    """A client holding `user`'s Gitea web session, as after the login form."""
    client = httpx.Client(base_url=server.url, timeout=TIMEOUT_SECONDS, follow_redirects=False)
    page = client.get("/user/login")
    page.raise_for_status()
    form = _form(page.text, action_ends="/user/login")
    fields = {**form.fields, "user_name": user.name, "password": user.password}
    answer = client.post(urljoin(str(page.url), form.action or "/user/login"), data=fields)
    if answer.status_code not in (302, 303) or "/user/login" in answer.headers.get(
            "location", ""):
        client.close()
        raise AssertionError(f"Gitea's login form refused {user.name}: {answer.status_code} "
                             f"{answer.text[:500]}")
    return client


def authorize(server: GiteaServer, user: User, authorize_url: str) -> str:
    """What `user`'s browser does with Ferry's redirect to Gitea's authorize page: log in,
    grant the application (when Gitea asks), and return the URL Gitea sends the browser back
    to (the application's callback with `code` and `state`), without following it."""
    with log_in(server, user) as client:
        answer = client.get(authorize_url)
        for _ in range(MAX_HOPS):
            if answer.status_code in (301, 302, 303, 307, 308):
                location = urljoin(str(answer.url), answer.headers["location"])
                if not _is_gitea(server, location):
                    return location
                answer = client.get(location)
                continue
            if answer.status_code == 200 and "/login/oauth/grant" in answer.text:
                form = _form(answer.text, action_ends="/login/oauth/grant")
                answer = client.post(urljoin(str(answer.url), form.action),
                                     data={**form.fields, "granted": "true"})
                continue
            break
        raise AssertionError(f"Gitea did not send {user.name} back to the application: "
                             f"{answer.status_code} {answer.url} {answer.text[:1000]}")


def _is_gitea(server: GiteaServer, url: str) -> bool:
    ours, theirs = urlsplit(server.url), urlsplit(url)
    return (theirs.hostname, theirs.port) == (ours.hostname, ours.port)


@dataclass
class _Form:
    action: str = ""
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    """Every `<form>`'s action and hidden inputs (Gitea's CSRF token among them, if any)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self._current: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = _Form(action=values.get("action", ""))
            self.forms.append(self._current)
        elif (tag == "input" and self._current is not None and values.get("type") == "hidden"
              and values.get("name")):
            self._current.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _form(html: str, *, action_ends: str) -> _Form:
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if urlsplit(form.action).path.endswith(action_ends):
            return form
    raise AssertionError(f"no form posting to {action_ends} on the page: {html[:1000]}")
