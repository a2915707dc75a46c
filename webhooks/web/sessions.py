"""Session cookies: who is signed in, sealed into the browser's cookie.

A session is a small JSON document (a random session id, the provider, the forge login, the
forge's access token, when it ends) sealed with AES-256-GCM under a key derived from
`web.session_key`. Sealing both signs it (a forged, tampered or truncated cookie fails to
open and the request is anonymous) and encrypts it: the forge token travels with the browser
but only the receiver can read it. Nothing is kept on the server, so every replica with the
same key accepts every session and a restart signs nobody out; the price is that a session
cannot be revoked before it ends (sign-out clears the browser's copy only), hence the
`web.session_hours` limit written into the sealed document itself (shorter when the forge's
token expires sooner: then the person signs in again rather than seeing nothing).

The cookie is HttpOnly, SameSite=Lax (sent on the forge's redirect back, never on a
cross-site POST), Secure when `web.public_url` is https, and scoped to `/ui`.

The sign-in's `state` (and PKCE verifier, and where to go afterwards) lives in a second,
short-lived sealed cookie scoped to `/ui/signin`, so the callback is accepted only in the
browser that started the sign-in.

CSRF: every state-changing form carries HMAC-SHA256(session id) under a separate derived key;
`check_csrf` compares in constant time and refuses every POST without a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request
from starlette.responses import Response

from webhooks.web.identity import Viewer

log = structlog.get_logger(__name__)

SESSION_COOKIE = "ferry_session"
SIGNIN_COOKIE = "ferry_signin"
SESSION_PATH = "/ui"
SIGNIN_PATH = "/ui/signin"
# Seconds from leaving for the forge to coming back: enough to log in there and grant.
SIGNIN_SECONDS = 600
# A cookie longer than this is not ours (browsers keep 4096 bytes per cookie).
MAX_COOKIE_CHARS = 4096
_NONCE_BYTES = 12
_FORGES = frozenset({"github", "gitea", "gitlab"})

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingSignIn:
    """What the browser carries to the forge and back: checked at the callback."""

    provider: str
    state: str
    verifier: str = ""  # PKCE code verifier
    next: str = "/ui/"


class SessionCookies:
    """`webhooks.web.identity.Sessions`, plus writing and clearing the cookies."""

    def __init__(self, *, key: str, hours: float, secure: bool, clock: Clock = time.time) -> None:
        material = key.encode()
        if not material:
            material = os.urandom(32)
            log.warning("web.session_key is not set: using a random key, so sessions end when "
                        "this process does and other replicas do not accept them")
        elif len(material) < 32:
            log.warning("web.session_key is shorter than 32 bytes; use a longer random one")
        self._seal = AESGCM(_derive(material, b"ferry web session cookie"))
        self._csrf_key = _derive(material, b"ferry web csrf")
        self._seconds = hours * 3600.0
        self._secure = secure
        self._clock = clock

    # --- identity.Sessions ---------------------------------------------------------------

    def viewer(self, request: Request) -> Viewer | None:
        session = self._session(request)
        if session is None:
            return None
        return Viewer(provider=session["p"], forge=session["f"], login=session["l"],
                      token=session["t"])

    def csrf_token(self, request: Request) -> str:
        session = self._session(request)
        return self._csrf_for(session["sid"]) if session is not None else ""

    def check_csrf(self, request: Request, token: str | None) -> bool:
        session = self._session(request)
        if session is None or not token:
            return False
        return hmac.compare_digest(self._csrf_for(session["sid"]).encode(),
                                   token.encode("utf-8", "replace"))

    # --- writing -------------------------------------------------------------------------

    def sign_in(self, response: Response, viewer: Viewer, *, seconds: float | None = None
                ) -> None:
        """Start a session for `viewer` on `response` (a new session id: a fresh CSRF token),
        for `web.session_hours` or `seconds` (how long the forge's token lasts), if shorter."""
        lasts = min(self._seconds, seconds) if seconds is not None else self._seconds
        expires = self._clock() + lasts
        sealed = self._sealed(b"session", {
            "sid": secrets.token_urlsafe(18), "p": viewer.provider, "f": viewer.forge,
            "l": viewer.login, "t": viewer.token, "exp": expires})
        response.set_cookie(SESSION_COOKIE, sealed, max_age=int(lasts), path=SESSION_PATH,
                            secure=self._secure, httponly=True, samesite="lax")

    def sign_out(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path=SESSION_PATH, secure=self._secure,
                               httponly=True, samesite="lax")

    def begin_sign_in(self, response: Response, pending: PendingSignIn) -> None:
        sealed = self._sealed(b"signin", {
            "p": pending.provider, "s": pending.state, "v": pending.verifier, "n": pending.next,
            "exp": self._clock() + SIGNIN_SECONDS})
        response.set_cookie(SIGNIN_COOKIE, sealed, max_age=SIGNIN_SECONDS, path=SIGNIN_PATH,
                            secure=self._secure, httponly=True, samesite="lax")

    def pending_sign_in(self, request: Request) -> PendingSignIn | None:
        opened = self._opened(b"signin", request.cookies.get(SIGNIN_COOKIE))
        if opened is None or not all(isinstance(opened.get(key), str) for key in "psvn"):
            return None
        return PendingSignIn(provider=opened["p"], state=opened["s"], verifier=opened["v"],
                             next=opened["n"])

    def end_sign_in(self, response: Response) -> None:
        response.delete_cookie(SIGNIN_COOKIE, path=SIGNIN_PATH, secure=self._secure,
                               httponly=True, samesite="lax")

    # --- sealing -------------------------------------------------------------------------

    def _session(self, request: Request) -> dict[str, Any] | None:
        opened = self._opened(b"session", request.cookies.get(SESSION_COOKIE))
        if opened is None:
            return None
        if not all(isinstance(opened.get(key), str) and opened[key]
                   for key in ("sid", "p", "f", "l", "t")) or opened["f"] not in _FORGES:
            return None
        return opened

    def _csrf_for(self, session_id: str) -> str:
        return hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).hexdigest()

    def _sealed(self, purpose: bytes, content: Mapping[str, Any]) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(content, separators=(",", ":")).encode()
        sealed = nonce + self._seal.encrypt(nonce, plain, purpose)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def _opened(self, purpose: bytes, cookie: str | None) -> dict[str, Any] | None:
        """The sealed document, None if absent, not ours, tampered with, or expired."""
        if not cookie or len(cookie) > MAX_COOKIE_CHARS:
            return None
        try:
            sealed = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            plain = self._seal.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], purpose)
            content = json.loads(plain)
        except (ValueError, InvalidTag):  # binascii.Error and JSONDecodeError are ValueErrors
            return None
        if not isinstance(content, dict):
            return None
        expires = content.get("exp")
        if not isinstance(expires, int | float) or self._clock() >= expires:
            return None
        return content


def _derive(material: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose: a leak of one (say, a CSRF token's key) opens nothing
    else."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(material)
