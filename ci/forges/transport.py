"""One HTTP call to a forge: status codes to the error tree, pages followed, nothing secret logged.

Retrying is the caller's business (the controller's backoff is data, in settings); this module
only says, through the error it raises, whether and when a retry makes sense.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import structlog

from ci.forges.errors import (
    ForgeError,
    ForgeUnreachableError,
    NotFoundError,
    RateLimitedError,
    UnexpectedResponseError,
    error_class,
)
from ci.logs import excerpt

logger = structlog.get_logger(__name__)

Clock = Callable[[], float]
QueryParams = Mapping[str, str | int]

# GitHub caps a page at 100 items and so do Gitea (default `MAX_RESPONSE_ITEMS` 50, we ask for
# its maximum) and GitLab; fewer round trips for large pull requests.
PAGE_SIZE = 100
# A runaway `Link` chain (a misbehaving proxy) must not loop forever; GitHub itself stops
# listing pull request files at 3,000.
MAXIMUM_PAGES = 100


def retry_after_seconds(headers: httpx.Headers, *, now: Clock = time.time) -> float | None:
    """How long the forge asked us to wait, from `Retry-After` or GitHub's rate-limit headers."""
    value = headers.get("retry-after")
    if value is not None:
        value = value.strip()
        if value.isdigit():
            return float(value)
        moment = email.utils.parsedate_to_datetime(value) if value else None
        if moment is not None:
            return max(0.0, moment.timestamp() - now())
    if headers.get("x-ratelimit-remaining") == "0":
        reset = headers.get("x-ratelimit-reset", "")
        if reset.isdigit():
            return max(0.0, float(reset) - now())
    return None


def error_for(response: httpx.Response, *, now: Clock = time.time) -> ForgeError:
    status = response.status_code
    retry_after = retry_after_seconds(response.headers, now=now)
    # GitHub answers an exhausted rate limit with 403 (primary) or 403/429 with Retry-After
    # (secondary); a 403 without those headers is a real permission problem.
    rate_limited = status == 429 or (status == 403 and retry_after is not None)
    kind = RateLimitedError if rate_limited else error_class(status)
    request = response.request
    message = (
        f"{request.method} {request.url.path}: {status} {response.reason_phrase}: "
        f"{excerpt(response.text)}"
    )
    if rate_limited and retry_after is None:
        retry_after = 60.0  # 429 without a hint: a minute is what GitHub's docs suggest
    return kind(message, status=status, retry_after=retry_after)


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    params: QueryParams | None = None,
    json: object = None,
    now: Clock = time.time,
) -> httpx.Response:
    """Send one request; a 2xx response comes back, anything else raises a `ForgeError`."""
    try:
        response = await http.request(method, url, headers=headers, params=params, json=json)
    except httpx.TransportError as error:
        raise ForgeUnreachableError(f"{method} {url}: {type(error).__name__}: {error}") from error
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as error:
        failure = error_for(response, now=now)
        logger.info(
            "forge call failed",
            method=method,
            path=response.request.url.path,
            status=response.status_code,
            retry_after=failure.retry_after,
        )
        raise failure from error
    return response


async def get_json_or_none(
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    params: QueryParams | None = None,
) -> Any | None:
    """`GET url`'s JSON body; None when the forge answers 404 (no such file, commit, branch
    or user)."""
    try:
        response = await send(http, "GET", url, headers=headers, params=params)
    except NotFoundError:
        return None
    return json_of(response)


def message_of(body: object, *, inside: str | None = None) -> str:
    """A commit answer's message: `{"message": ...}` (GitHub's git commit), or under
    `inside` (`{"commit": {"message": ...}}`, Gitea's)."""
    if inside is not None:
        body = body.get(inside) if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str):
        where = f"`{inside}.message`" if inside else "`message`"
        raise UnexpectedResponseError(f"commit response has no string {where}")
    return message


def json_of(response: httpx.Response) -> Any:
    """The decoded body; a forge answering 2xx with something else is a forge bug we report."""
    try:
        return response.json()
    except ValueError as error:
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url.path}: expected JSON, got "
            f"{excerpt(response.text)!r}"
        ) from error


def next_link(response: httpx.Response) -> str | None:
    """The `rel="next"` URL, only if it stays on the same origin (it receives our token)."""
    link = response.links.get("next")
    if link is None or "url" not in link:
        return None
    target = response.request.url.join(link["url"])
    here = response.request.url
    if (target.scheme, target.host, target.port) != (here.scheme, here.host, here.port):
        raise UnexpectedResponseError(f"pagination link leaves {here.host}: {excerpt(str(target))}")
    return str(target)


async def pages(
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    params: QueryParams,
    items: str | None = None,
) -> AsyncIterator[list[Any]]:
    """Each page of a listing, following `Link: rel="next"` as GitHub, Gitea and GitLab send it.

    `items` names the field that holds a page's list, for listings that answer an object
    (GitHub's check runs: `{"total_count": ..., "check_runs": [...]}`).
    """
    response = await send(http, "GET", url, headers=headers, params=params)
    for _ in range(MAXIMUM_PAGES):
        page = json_of(response)
        if items is not None and isinstance(page, dict):
            page = page.get(items)
        if not isinstance(page, list):
            raise UnexpectedResponseError(f"GET {response.request.url.path}: expected a JSON list")
        yield page
        following = next_link(response)
        if following is None:
            return
        # The next URL already carries every query parameter.
        response = await send(http, "GET", following, headers=headers)
    raise UnexpectedResponseError(f"GET {url}: more than {MAXIMUM_PAGES} pages")


def named_branch(body: object) -> str:
    """`default_branch` of a repository (GitHub, Gitea) or project (GitLab) answer."""
    branch = body.get("default_branch") if isinstance(body, dict) else None
    if not isinstance(branch, str) or not branch:
        raise UnexpectedResponseError("a repository without a default branch (is it empty?)")
    return branch


def commit_of(body: object, key: str) -> str:
    """The head commit of a branch answer (`{"commit": {key: sha}}` on all three forges)."""
    commit = body.get("commit") if isinstance(body, dict) else None
    sha = commit.get(key) if isinstance(commit, dict) else None
    if not isinstance(sha, str) or not sha:
        raise UnexpectedResponseError(f"a branch without its commit's {key}")
    return sha


def file_content(body: object, *, path: str, ref: str) -> bytes | None:
    """The bytes of a GitHub or Gitea `contents` response; None if it is not a file."""
    if not isinstance(body, dict) or body.get("type") != "file":
        return None  # a directory, symlink or submodule is not a spec file
    content = body.get("content")
    if body.get("encoding") != "base64" or not isinstance(content, str):
        # GitHub leaves files over 1 MB without content; no spec is that large.
        raise UnexpectedResponseError(f"{path} at {ref}: no base64 content (file too large?)")
    try:
        return base64.b64decode(content)
    except (binascii.Error, ValueError) as error:
        raise UnexpectedResponseError(f"{path} at {ref}: content is not base64") from error


def changed_file_paths(entry: object) -> tuple[str, ...]:
    """The paths of one entry of a pull request's files (GitHub, Gitea): both sides of a
    rename."""
    if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
        raise UnexpectedResponseError("pull request file entry has no `filename`")
    previous = entry.get("previous_filename")
    return (entry["filename"], previous) if isinstance(previous, str) and previous else (
        entry["filename"],
    )
