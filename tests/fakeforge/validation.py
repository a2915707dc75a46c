"""Check one HTTP request against a forge's API description with openapi-core."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
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
    header_map = Headers(headers)
    request = _Request(
        host_url="http://fake",
        path=validation_path(forge, raw_path),
        method=method.lower(),
        parameters=RequestParameters(
            query=ImmutableMultiDict(query), header=header_map, cookie=ImmutableMultiDict()
        ),
        body=body or None,
        content_type=header_map.get("content-type", "application/octet-stream"),
    )
    try:
        description(forge).validate_request(request)
    except OpenAPIError as error:
        cause = f" ({error.__cause__})" if error.__cause__ else ""
        return f"{type(error).__name__}: {error}{cause}"
    return None
