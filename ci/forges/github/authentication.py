"""GitHub credentials as request headers: a token as is, or an App's installation token.

An App signs a short JWT with its private key and trades it for an installation access token
(valid one hour), which is cached until five minutes before it expires. Neither token is ever
logged or put in an exception message.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import httpx

from ci.forges.client import Credentials, GitHubAppCredentials, TokenCredentials
from ci.forges.errors import UnexpectedResponseError
from ci.forges.transport import Clock, json_of, send

# GitHub accepts App JWTs for at most ten minutes; iat is backdated for clock drift, as
# GitHub's docs recommend.
JWT_BACKDATE_SECONDS = 60
JWT_LIFETIME_SECONDS = 9 * 60
# Refresh the installation token this long before it expires, so a call never carries a
# token that dies in flight.
TOKEN_REFRESH_MARGIN_SECONDS = 5 * 60

API_VERSION = "2022-11-28"
BASE_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}


def app_jwt(credentials: GitHubAppCredentials, *, now: float) -> str:
    issued = int(now) - JWT_BACKDATE_SECONDS
    claims = {"iat": issued, "exp": issued + JWT_LIFETIME_SECONDS, "iss": credentials.app_id}
    # PyJWT with `cryptography` costs 16 MB and 50 ms at import: a receiver or controller
    # whose Repositories all use tokens never pays for it.
    import jwt  # noqa: PLC0415

    return jwt.encode(claims, credentials.private_key, algorithm="RS256")


@dataclass(slots=True)
class _CachedToken:
    token: str
    refresh_at: float


class GitHubAuthentication:
    """Produces the `Authorization` header for each call; shares one cached App token."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        http: httpx.AsyncClient,
        api_url: str,
        clock: Clock = time.time,
    ) -> None:
        self._credentials = credentials
        self._http = http
        self._api_url = api_url.rstrip("/")
        self._clock = clock
        self._cached: _CachedToken | None = None
        self._lock = asyncio.Lock()

    @property
    def app_mode(self) -> bool:
        return isinstance(self._credentials, GitHubAppCredentials)

    async def headers(self) -> dict[str, str]:
        return {**BASE_HEADERS, "Authorization": f"Bearer {await self.token()}"}

    async def token(self) -> str:
        """The token itself (the receiver hands an App's installation token to a clone)."""
        credentials = self._credentials
        if isinstance(credentials, TokenCredentials):
            return credentials.token
        return await self._installation_token(credentials)

    async def _installation_token(self, credentials: GitHubAppCredentials) -> str:
        # One refresh at a time: concurrent reports would otherwise each mint a token.
        async with self._lock:
            now = self._clock()
            if self._cached is not None and now < self._cached.refresh_at:
                return self._cached.token
            signed = app_jwt(credentials, now=now)
            url = f"{self._api_url}/app/installations/{credentials.installation_id}/access_tokens"
            response = await send(
                self._http,
                "POST",
                url,
                headers={**BASE_HEADERS, "Authorization": f"Bearer {signed}"},
            )
            body = json_of(response)
            token, expires_at = _token_fields(body)
            self._cached = _CachedToken(
                token=token, refresh_at=expires_at - TOKEN_REFRESH_MARGIN_SECONDS
            )
            return token


def _token_fields(body: object) -> tuple[str, float]:
    if not isinstance(body, dict):
        raise UnexpectedResponseError("installation token response is not a JSON object")
    token, expires_at = body.get("token"), body.get("expires_at")
    if not isinstance(token, str) or not isinstance(expires_at, str):
        raise UnexpectedResponseError("installation token response lacks `token` or `expires_at`")
    try:
        moment = datetime.fromisoformat(expires_at)
    except ValueError as error:
        raise UnexpectedResponseError(
            f"installation token `expires_at` is not a time: {expires_at!r}"
        ) from error
    return token, moment.timestamp()
