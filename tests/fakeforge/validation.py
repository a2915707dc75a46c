"""Check one HTTP request, and the fake's answer to it, against a forge's API description
with openapi-core."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

from ci.forges.types import ForgeKind
from tests.fakeforge.descriptions import description

# OpenAPI path templates cannot hold a parameter with `/` in it, but these real APIs route
# `contents/dir/file.yaml` with literal slashes; for validation only, the rest of such a path
# is folded into one encoded segment.
_GREEDY_PATHS = {
    ForgeKind.GITHUB: re.compile(r"^(/repos/[^/]+/[^/]+/contents/)(.+)$"),
    ForgeKind.GITEA: re.compile(r"^(/api/v1/repos/[^/]+/[^/]+/contents/)(.+)$"),
}


@dataclass
class _Request:
    """The request protocol openapi-core reads (openapi_core.protocols.Request)."""

    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    body: bytes | None
    content_type: str


@dataclass
class _Response:
    """The response protocol openapi-core reads (openapi_core.protocols.Response)."""

    status_code: int
    data: bytes | None
    headers: Mapping[str, str]
    content_type: str


# Forges whose descriptions say what each answer looks like (GitHub's does, in full; the
# Gitea conversion keeps only descriptions and GitLab's file describes requests only).
_RESPONSES_DESCRIBED = frozenset({ForgeKind.GITHUB})


def validation_path(forge: ForgeKind, raw_path: str) -> str:
    greedy = _GREEDY_PATHS.get(forge)
    match = greedy.match(raw_path) if greedy else None
    if match is None:
        return raw_path
    rest = urllib.parse.unquote(match.group(2))
    return match.group(1) + urllib.parse.quote(rest, safe="")


def problems(
    forge: ForgeKind,
    *,
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
) -> str | None:
    """Why the real API would reject this request, or None if it would accept it.

    `raw_path` is the path as sent, still percent-encoded: GitLab's `projects/group%2Fname`
    must stay one segment.
    """
    try:
        description(forge).validate_request(_request(forge, method, raw_path, query, headers, body))
    except OpenAPIError as error:
        return _explained(error)
    return None


def response_problems(
    forge: ForgeKind,
    *,
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
    status_code: int,
    response_headers: Mapping[str, str],
    response_body: bytes,
) -> str | None:
    """Why the fake's answer differs from what the real API answers, or None.

    An answer with a status code the operation does not describe is checked only if it is a
    success: GitHub answers 401 (bad credentials), 422 and 5xx on every operation without
    listing them on each.
    """
    if forge not in _RESPONSES_DESCRIBED:
        return None
    request = _request(forge, method, raw_path, query, headers, body)
    response = _Response(
        status_code=status_code,
        data=response_body or None,
        headers=response_headers,
        content_type=response_headers.get("content-type", "application/json").split(";")[0],
    )
    try:
        description(forge).validate_response(request, response)
    except ResponseNotFound as error:
        return None if status_code >= 400 else _explained(error)
    except OpenAPIError as error:
        return _explained(error)
    return None


def _explained(error: OpenAPIError) -> str:
    said = str(error)
    cause = f" ({error.__cause__})" if error.__cause__ and str(error.__cause__) != said else ""
    return f"{type(error).__name__}: {said}{cause}"


def _request(
    forge: ForgeKind,
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
) -> _Request:
    header_map = Headers(headers)
    return _Request(
        host_url="http://fake",
        path=validation_path(forge, raw_path),
        method=method.lower(),
        parameters=RequestParameters(
            query=ImmutableMultiDict(query), header=header_map, cookie=ImmutableMultiDict()
        ),
        body=body or None,
        content_type=header_map.get("content-type", "application/octet-stream"),
    )
