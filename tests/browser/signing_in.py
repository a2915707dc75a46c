"""Signing in to Ferry's pages with the real Gitea, in the browser, as a person does: Ferry's
sign-in button, Gitea's own login form, Gitea's "Authorize Application" page the first time,
and back to the page they asked for."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, Response, expect

from tests.gitea.api import User
from tests.gitea.oauth import OAuthApp
from tests.gitea.server import GiteaServer

PROVIDER = "gitea"
# Gitea's templates (templates/user/auth/signin_inner.tmpl, grant.tmpl).
GITEA_LOGIN_FORM = "form[action$='/user/login']"
GITEA_GRANT = "button[name='granted'][value='true']"


def provider_settings(gitea: GiteaServer, app: OAuthApp) -> dict[str, Any]:
    """`web.providers[]` for the real Gitea."""
    return {"name": PROVIDER, "forge": "gitea", "url": gitea.url,
            "client_id": app.client_id, "client_secret": app.client_secret}


def callback_url(public_url: str) -> str:
    return f"{public_url}/ui/signin/{PROVIDER}/callback"


def _host(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def _fill_login_form(page: Page, user: User) -> None:
    form = page.locator(GITEA_LOGIN_FORM)
    form.locator("input[name=user_name]").fill(user.name)
    form.locator("input[name=password]").fill(user.password)
    form.locator("button.primary, button[type=submit], button").first.click()


def log_in_to_gitea(page: Page, user: User, *, gitea: GiteaServer) -> None:
    """Log in on Gitea's own login page, as a developer does before looking at a commit."""
    page.goto(f"{gitea.url}/user/login")
    _fill_login_form(page, user)
    page.wait_for_url(lambda url: "/user/login" not in url)


def sign_in(page: Page, user: User, *, gitea: GiteaServer) -> None:
    """From Ferry's sign-in page (where an anonymous viewer is sent), through Gitea (its login
    form unless this browser is logged in there already; its grant page the first time), to
    wherever Gitea sends the browser back to. Leaves the browser on that page."""
    at_gitea = _host(gitea.url)
    button = page.locator(f"a.signin[data-provider='{PROVIDER}']")
    expect(button).to_be_visible()
    button.click()
    page.wait_for_url(lambda url: _host(url) == at_gitea)
    page.wait_for_load_state()
    if "/user/login" in page.url:
        _fill_login_form(page, user)
    page.wait_for_url(lambda url: _host(url) != at_gitea or "/login/oauth/" in url)
    page.wait_for_load_state()
    if _host(page.url) == at_gitea:
        page.locator(GITEA_GRANT).click()
        page.wait_for_url(lambda url: _host(url) != at_gitea)
    page.wait_for_load_state()


def open_signed_in(page: Page, url: str, user: User, *, gitea: GiteaServer,
                   public_url: str) -> int:
    """Open `url` as `user`: sent to sign in first, then back to `url`; the HTTP status of the
    page Ferry finally answered with."""
    statuses: list[int] = []

    def record(response: Response) -> None:
        if response.request.is_navigation_request() and _host(response.url) == _host(
                public_url):
            statuses.append(response.status)

    page.on("response", record)
    try:
        page.goto(url)
        assert urlsplit(page.url).path == "/ui/signin", page.url
        sign_in(page, user, gitea=gitea)
    finally:
        page.remove_listener("response", record)
    assert statuses, f"no page of Ferry's answered for {url}"
    return statuses[-1]
