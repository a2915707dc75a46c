"""What signing in adds to every page: opening the sealed session cookie, the CSRF token, and
an access check answered from the cache (the forge is asked once per viewer and repository
per `web.access_cache_seconds`).

    python3 -m bench.web_signin [--iterations N]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from starlette.requests import Request
from starlette.responses import Response

from ci.kube.repositories import Repository, SecretKeys
from ci.settings import SignInProvider
from webhooks.web.access import ForgeAccess
from webhooks.web.identity import Viewer
from webhooks.web.oauth import OAuthProvider
from webhooks.web.sessions import SESSION_COOKIE, SessionCookies


def _per_call(label: str, seconds: float, iterations: int) -> None:
    print(f"{label:<44} {seconds / iterations * 1e6:8.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=20_000)
    iterations = parser.parse_args().iterations
    sessions = SessionCookies(key="k" * 48, hours=12, secure=True)
    viewer = Viewer(provider="github", forge="github", login="octocat", token="gho_" + "x" * 36)
    response = Response()
    sessions.sign_in(response, viewer)
    cookie = response.headers["set-cookie"].split(";", 1)[0]
    print(f"session cookie: {len(cookie) - len(SESSION_COOKIE) - 1} characters")
    request = Request({"type": "http", "method": "GET", "path": "/ui/", "query_string": b"",
                       "headers": [(b"cookie", cookie.encode())]})
    started = time.perf_counter()
    for _ in range(iterations):
        assert sessions.viewer(Request(request.scope)) is not None
    _per_call("parse cookies + open the session (viewer)", time.perf_counter() - started,
              iterations)
    started = time.perf_counter()
    for _ in range(iterations):
        sessions.check_csrf(Request(request.scope), "0" * 64)
    _per_call("check a CSRF token", time.perf_counter() - started, iterations)
    started = time.perf_counter()
    for _ in range(iterations):
        sessions.sign_in(Response(), viewer)
    _per_call("seal a new session (sign-in)", time.perf_counter() - started, iterations)

    def forge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"permissions": {"pull": True, "push": False}})

    async def checks() -> float:
        async with httpx.AsyncClient(transport=httpx.MockTransport(forge)) as http:
            provider = OAuthProvider(SignInProvider(
                name="github", forge="github", url="https://github.com", client_id="c",
                client_secret="s"), http)
            access = ForgeAccess({"github": provider}, cache_seconds=300)
            repository = Repository(namespace="t", name="r", uid="u", forge="github",
                                    url="https://github.com/acme/shop", secret=SecretKeys(name="s"))
            await access.may_read(viewer, repository)
            started = time.perf_counter()
            for _ in range(iterations):
                await access.may_read(viewer, repository)
            return time.perf_counter() - started

    _per_call("access check answered from the cache", asyncio.run(checks()), iterations)


if __name__ == "__main__":
    main()
