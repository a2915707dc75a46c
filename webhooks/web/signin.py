"""Signing in with the forge: `/ui/signin` (the providers), `/ui/signin/{provider}` (off to the
forge), `/ui/signin/{provider}/callback` (back, with a code), `POST /ui/signout`.

The flow is OAuth2's authorization code flow with PKCE. The `state` and the PKCE verifier are
sealed into a short-lived cookie of the browser that started (`webhooks.web.sessions`), so a
callback from another browser, an old one, or one for another provider is refused with 400.
Where to go afterwards (`next`) is only ever a local path under `/ui/` (`local_next`): a
sign-in link cannot send anyone to another site.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

import jinja2
import structlog
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from webhooks.web.identity import Viewer
from webhooks.web.oauth import OAuthError, OAuthProvider, pkce_pair
from webhooks.web.sessions import PendingSignIn, SessionCookies

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/ui")

HOME = "/ui/"
# Sign-in answers are never cached, and never tell the next site where the browser came from
# (the callback's URL holds the code).
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
MAX_NEXT_CHARS = 2048
# Printable ASCII only: no whitespace or control characters a browser might strip or fold.
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
ProviderName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")]


def local_next(value: str | None) -> str:
    """`value` if it is a path under `/ui/` of this site, else `/ui/`. Refused: anything with
    a scheme or host (`https://x`, `//x`, `/\\x`), backslashes, `..` segments, whitespace or
    control characters, or longer than `MAX_NEXT_CHARS`."""
    if not value or len(value) > MAX_NEXT_CHARS or not _PRINTABLE.fullmatch(value):
        return HOME
    if "\\" in value or not (value == "/ui" or value.startswith("/ui/")):
        return HOME
    path = value.split("?", 1)[0].split("#", 1)[0]
    if "//" in path or any(segment in ("..", ".") for segment in path.split("/")):
        return HOME
    lowered = path.lower()
    if "%2e" in lowered or "%2f" in lowered or "%5c" in lowered:
        return HOME
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class SignIn:
    """What the sign-in routes need (`Runtime.signin`)."""

    sessions: SessionCookies
    providers: dict[str, OAuthProvider]
    public_url: str
    templates: jinja2.Environment

    def redirect_uri(self, provider: str) -> str:
        return f"{self.public_url.rstrip('/')}/ui/signin/{provider}/callback"


def templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("webhooks.web", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def _signin(request: Request) -> SignIn | None:
    runtime = getattr(request.app.state, "runtime", None)
    found: SignIn | None = getattr(runtime, "signin", None)
    return found


def _page(signin: SignIn | None, status: int, *, title: str, message: str = "",
          next_url: str = HOME, viewer: Viewer | None = None) -> HTMLResponse:
    providers = sorted(signin.providers.values(), key=lambda p: p.name) if signin else []
    if signin is None:
        html = f"<!doctype html><title>{title}</title><p>{title}</p>"
    else:
        html = signin.templates.get_template("signin.html").render(
            title=title, message=message, providers=providers, viewer=viewer,
            next_query=urlencode({"next": next_url}) if next_url != HOME else "")
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


@router.get("/signin")
async def signin_page(request: Request, next: str | None = Query(None)) -> Response:
    signin = _signin(request)
    if signin is None:
        return _page(None, 404, title="Not found")
    return _page(signin, 200, title="Sign in", next_url=local_next(next),
                 viewer=signin.sessions.viewer(request))


@router.get("/signin/{provider}")
async def start(request: Request, provider: ProviderName,
                next: str | None = Query(None)) -> Response:
    signin = _signin(request)
    chosen = signin.providers.get(provider) if signin else None
    if signin is None or chosen is None:
        return _page(signin, 404, title="Not found", message="No such sign-in provider.")
    state = secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair()
    response = RedirectResponse(
        chosen.authorize_url(redirect_uri=signin.redirect_uri(provider), state=state,
                             challenge=challenge), status_code=303,
        headers=NO_STORE)
    signin.sessions.begin_sign_in(response, PendingSignIn(
        provider=provider, state=state, verifier=verifier, next=local_next(next)))
    return response


@router.get("/signin/{provider}/callback")
async def callback(request: Request, provider: ProviderName, code: str | None = Query(None),
                   state: str | None = Query(None), error: str | None = Query(None)) -> Response:
    signin = _signin(request)
    chosen = signin.providers.get(provider) if signin else None
    if signin is None or chosen is None:
        return _page(signin, 404, title="Not found", message="No such sign-in provider.")
    pending = signin.sessions.pending_sign_in(request)
    if pending is None or pending.provider != provider or not state or not secrets.compare_digest(
            pending.state.encode(), state.encode("utf-8", "replace")):
        return _failed(signin, 400, "This sign-in was not started in this browser, or took too "
                       "long. Please sign in again.")
    if error or not code:
        return _failed(signin, 403, f"{chosen.name} did not let you sign in"
                       f"{f' ({error[:100]})' if error else ''}.")
    try:
        grant = await chosen.exchange(code=code, redirect_uri=signin.redirect_uri(provider),
                                      verifier=pending.verifier)
        login = await chosen.login(grant.token)
    except OAuthError as failure:
        return _failed(signin, 502, str(failure))
    viewer = Viewer(provider=provider, forge=chosen.forge, login=login, token=grant.token)
    response = RedirectResponse(local_next(pending.next), status_code=303,
                                headers=NO_STORE)
    signin.sessions.end_sign_in(response)
    signin.sessions.sign_in(response, viewer, seconds=grant.seconds)
    log.info("signed in", provider=provider, login=login)
    return response


def _failed(signin: SignIn, status: int, message: str) -> Response:
    response = _page(signin, status, title="Sign-in failed", message=message)
    signin.sessions.end_sign_in(response)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    signin = _signin(request)
    if signin is None:
        return _page(None, 404, title="Not found")
    form = await request.form()
    token = form.get("csrf")
    if signin.sessions.viewer(request) is not None and not signin.sessions.check_csrf(
            request, token if isinstance(token, str) else None):
        return _page(signin, 403, title="Sign-out refused",
                     message="The form was not sent from a page of this site. Reload the page "
                     "and try again.")
    response = RedirectResponse(HOME, status_code=303)
    signin.sessions.sign_out(response)
    return response
