"""Status codes to the error tree, retry hints, and what goes into messages."""

from __future__ import annotations

import httpx
import pytest

from ci.forges.errors import (
    ConflictError,
    ForbiddenError,
    ForgeClientError,
    ForgeError,
    ForgeServerError,
    ForgeUnreachableError,
    NotFoundError,
    PayloadError,
    RateLimitedError,
    SignatureError,
    UnauthorizedError,
    UnexpectedResponseError,
    WebhookError,
    is_temporary,
)
from ci.forges.transport import pages, send
from ci.logs import excerpt

pytestmark = pytest.mark.anyio
NOW = 1_700_000_000.0


def respond(
    status: int, headers: dict[str, str] | None = None, body: str = "{}"
) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, text=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (400, {}, ForgeClientError, None),
        (401, {}, UnauthorizedError, None),
        (403, {}, ForbiddenError, None),
        (404, {}, NotFoundError, None),
        (409, {}, ConflictError, None),
        (410, {}, NotFoundError, None),
        (422, {}, ForgeClientError, None),
        (429, {"Retry-After": "7"}, RateLimitedError, 7.0),
        (429, {}, RateLimitedError, 60.0),
        # GitHub's primary rate limit: 403 with remaining 0 and the reset time.
        (
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)},
            RateLimitedError,
            30.0,
        ),
        # Secondary rate limit: 403 with Retry-After.
        (403, {"Retry-After": "60"}, RateLimitedError, 60.0),
        (403, {"x-ratelimit-remaining": "12"}, ForbiddenError, None),
        (500, {}, ForgeServerError, None),
        (503, {"Retry-After": "Tue, 14 Nov 2023 22:13:40 GMT"}, ForgeServerError, 20.0),
    ],
)
async def test_status_codes_choose_the_error(
    status: int, headers: dict[str, str], kind: type[Exception], retry_after: float | None
) -> None:
    async with respond(status, headers) as http:
        with pytest.raises(kind) as caught:
            await send(http, "GET", "https://forge.example/x", headers={}, now=lambda: NOW)
    assert type(caught.value) is kind
    assert caught.value.retry_after == retry_after  # type: ignore[attr-defined]
    assert caught.value.status == status  # type: ignore[attr-defined]
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
    assert is_temporary(caught.value) == (status >= 500 or kind is RateLimitedError)


async def test_remote_bodies_are_cut_and_tokens_stay_out_of_messages() -> None:
    async with respond(502, body="<html>" + "x" * 10_000) as http:
        with pytest.raises(ForgeServerError) as caught:
            await send(
                http, "GET", "https://forge.example/x", headers={"Authorization": "Bearer sekrit"}
            )
    assert len(str(caught.value)) < 500
    assert "more characters" in str(caught.value)
    assert "sekrit" not in str(caught.value)


async def test_connection_failures_are_temporary_and_chained() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(ForgeUnreachableError) as caught:
            await send(http, "GET", "https://forge.example/x", headers={})
    assert is_temporary(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_pagination_does_not_follow_links_to_other_hosts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=[1], headers={"Link": '<https://evil.example/p2>; rel="next"'}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(UnexpectedResponseError, match=r"leaves forge\.example"):
            async for _ in pages(http, "https://forge.example/p1", headers={}, params={}):
                pass


def test_a_refused_delivery_is_no_failure_of_the_forges_api() -> None:
    # Retry loops and "the forge's API failed" answers catch ForgeError: a bad signature or
    # payload is the delivery's fault, answered 4xx by the receiver, never retried.
    for error in (SignatureError("x"), PayloadError("x")):
        assert isinstance(error, WebhookError) and not isinstance(error, ForgeError)
        assert not is_temporary(error)
    assert not is_temporary(NotFoundError("x")) and is_temporary(ForgeServerError("x"))
    assert not is_temporary(KeyError("x"))


def test_excerpt() -> None:
    assert excerpt("short\n  body") == "short body"
    assert excerpt("y" * 400, limit=10) == "yyyyyyyyyy... (390 more characters)"
