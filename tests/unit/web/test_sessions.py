"""Session cookies: what a browser gets, and what the receiver makes of what it sends back."""

from __future__ import annotations

import base64
from http.cookies import SimpleCookie

import pytest
from starlette.requests import Request
from starlette.responses import Response
from structlog.testing import capture_logs

from webhooks.web.identity import Viewer
from webhooks.web.sessions import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    PendingSignIn,
    SessionCookies,
)

KEY = "k" * 40
VIEWER = Viewer(provider="gitea", forge="gitea", login="alice", token="tok-secret-123")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def sessions(clock: Clock | None = None, *, key: str = KEY, secure: bool = True,
             hours: float = 12.0) -> SessionCookies:
    return SessionCookies(key=key, hours=hours, secure=secure, clock=clock or Clock())


def set_cookies(response: Response) -> dict[str, SimpleCookie]:
    found = {}
    for header in response.headers.getlist("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        found.update({name: cookie for name in cookie})
    return found


def signed_in(store: SessionCookies, viewer: Viewer = VIEWER) -> str:
    response = Response()
    store.sign_in(response, viewer)
    return set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE].value


def request(**cookies: str) -> Request:
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return Request({"type": "http", "method": "GET", "path": "/ui/", "query_string": b"",
                    "headers": [(b"cookie", header.encode())] if cookies else []})


def test_a_signed_in_browser_is_the_viewer_it_signed_in_as() -> None:
    store = sessions()
    assert store.viewer(request(ferry_session=signed_in(store))) == VIEWER
    assert store.viewer(request()) is None


def test_the_cookie_is_httponly_samesite_lax_secure_scoped_and_ends() -> None:
    response = Response()
    sessions(hours=2).sign_in(response, VIEWER)
    morsel = set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "lax"
    assert morsel["secure"] is True
    assert morsel["path"] == "/ui"
    assert morsel["max-age"] == str(2 * 3600)
    plain_http = Response()
    sessions(secure=False).sign_in(plain_http, VIEWER)
    assert not set_cookies(plain_http)[SESSION_COOKIE][SESSION_COOKIE]["secure"]


def test_the_forge_token_cannot_be_read_from_the_cookie() -> None:
    value = signed_in(sessions())
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert b"tok-secret" not in raw and b"alice" not in raw
    assert "tok-secret" not in value


@pytest.mark.parametrize("spoil", [
    lambda v: v[:-1] + ("A" if v[-1] != "A" else "B"),  # last character changed
    lambda v: v[:20] + ("x" if v[20] != "x" else "y") + v[21:],  # one in the middle
    lambda v: v[:-8],  # truncated
    lambda v: v + "AAAA",  # extended
    lambda v: "",
    lambda v: "not base64 at all!",
    lambda v: "A" * 5000,  # longer than any cookie of ours
])
def test_a_tampered_cookie_is_anonymous(spoil: object) -> None:
    store = sessions()
    value = signed_in(store)
    assert callable(spoil)
    assert store.viewer(request(ferry_session=spoil(value))) is None


def test_a_cookie_sealed_with_another_key_is_anonymous() -> None:
    forged = signed_in(sessions(key="another key " * 4))
    assert sessions().viewer(request(ferry_session=forged)) is None


def test_a_session_ends_after_session_hours() -> None:
    clock = Clock()
    store = sessions(clock, hours=1)
    value = signed_in(store)
    clock.now += 3599
    assert store.viewer(request(ferry_session=value)) == VIEWER
    clock.now += 1
    assert store.viewer(request(ferry_session=value)) is None


def test_a_session_ends_with_the_forge_token_if_that_is_sooner() -> None:
    clock = Clock()
    store = sessions(clock, hours=12)
    response = Response()
    store.sign_in(response, VIEWER, seconds=7200)
    morsel = set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]
    assert morsel["max-age"] == "7200"
    clock.now += 7200
    assert store.viewer(request(ferry_session=morsel.value)) is None
    longer = Response()
    store.sign_in(longer, VIEWER, seconds=10 * 24 * 3600)
    assert set_cookies(longer)[SESSION_COOKIE][SESSION_COOKIE]["max-age"] == str(12 * 3600)


def test_a_sign_in_cookie_is_not_a_session() -> None:
    store = sessions()
    response = Response()
    store.begin_sign_in(response, PendingSignIn(provider="gitea", state="s", verifier="v"))
    pending = set_cookies(response)[SIGNIN_COOKIE][SIGNIN_COOKIE].value
    assert store.viewer(request(ferry_session=pending)) is None
    assert store.pending_sign_in(request(ferry_signin=signed_in(store))) is None
    assert store.pending_sign_in(request(ferry_signin=pending)) == PendingSignIn(
        provider="gitea", state="s", verifier="v", next="/ui/")


def test_a_sign_in_left_for_ten_minutes_is_forgotten() -> None:
    clock = Clock()
    store = sessions(clock)
    response = Response()
    store.begin_sign_in(response, PendingSignIn(provider="gitea", state="s"))
    morsel = set_cookies(response)[SIGNIN_COOKIE][SIGNIN_COOKIE]
    assert morsel["path"] == "/ui/signin" and morsel["httponly"] is True
    clock.now += 600
    assert store.pending_sign_in(request(ferry_signin=morsel.value)) is None


def test_csrf_token_belongs_to_its_session_only() -> None:
    store = sessions()
    first, second = signed_in(store), signed_in(store)
    token = store.csrf_token(request(ferry_session=first))
    assert len(token) == 64
    assert store.check_csrf(request(ferry_session=first), token)
    # Another session (even the same person's), none, or a wrong/empty token: refused.
    assert not store.check_csrf(request(ferry_session=second), token)
    assert not store.check_csrf(request(), token)
    # One hex digit changed (a token ending in "0" already was refused only 15 times in 16).
    changed = token[:-1] + ("1" if token.endswith("0") else "0")
    assert not store.check_csrf(request(ferry_session=first), changed)
    assert not store.check_csrf(request(ferry_session=first), "")
    assert not store.check_csrf(request(ferry_session=first), None)
    assert not store.check_csrf(request(ferry_session=first), "é" * 64)
    assert store.csrf_token(request()) == ""


def test_csrf_tokens_of_another_key_are_refused() -> None:
    value = signed_in(sessions())
    other = sessions(key="x" * 40)
    assert not sessions().check_csrf(request(ferry_session=value),
                                     other.csrf_token(request(ferry_session=signed_in(other))))


def test_sign_out_clears_the_cookie() -> None:
    response = Response()
    sessions().sign_out(response)
    morsel = set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]
    assert morsel.value == "" and morsel["max-age"] == "0" and morsel["path"] == "/ui"


def test_without_a_key_sessions_last_one_process_and_it_says_so() -> None:
    with capture_logs() as logs:
        first = sessions(key="")
    assert any("session_key is not set" in entry["event"] for entry in logs)
    assert sessions(key="").viewer(request(ferry_session=signed_in(first))) is None
    assert first.viewer(request(ferry_session=signed_in(first))) == VIEWER


def test_replicas_with_one_key_accept_each_others_sessions() -> None:
    assert sessions().viewer(request(ferry_session=signed_in(sessions()))) == VIEWER
