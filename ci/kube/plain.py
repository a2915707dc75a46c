"""One API server call as plain JSON, through a `kubernetes.client.ApiClient`'s connection
pool and credentials.

The client's generated methods validate every argument with pydantic and pass the body and
the answer through its model sanitiser (about a millisecond of CPU for a patch, three for a
created PipelineRun: more than the rest of the receiver's work on it). Here the REST layer's
one `json.dumps` and one `orjson.loads` are all the encoding (the answer to a create or a patch
is the whole object, a created PipelineRun 14-17 kB, which orjson parses in half `json`'s
time). Errors are the client's `ApiException`s, as the generated methods raise them.

The controller reads Secrets and pod logs this way too, not through `CoreV1Api`: importing
that one generated class imports the models of the whole core API with it, 254 modules, about
21 MB of the controller's memory and most of a second of its start on a slow machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson

JSON = "application/json"


def send(client: Any, method: str, path: str, *, query: Mapping[str, str | int] | None = None,
         body: Mapping[str, Any] | None = None, content_type: str = JSON,
         timeout: float | tuple[float, float]) -> Any:
    """`method` on `path` (from the API server's root: `ResourceKind.path`) with
    `query` and `body`: the client's `RESTResponse`, its body not read yet (`.read()`, or
    `.response.stream(...)` then `.response.release_conn()`). An answer outside 2xx is raised
    as the client's `ApiException`. `client`: a `kubernetes.client.ApiClient`; `timeout`:
    seconds in all, or (connect, each read). It accepts JSON, for a pod's log too: the API
    server answers `text/plain` there with 406, and sends the log as it is to JSON, as the
    generated client asks."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 (kept lazy)

    headers = {**client.default_headers, "Accept": JSON}
    if body is not None:
        headers["Content-Type"] = content_type
    client.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
    url = client.configuration.host + path + (f"?{urlencode(query)}" if query else "")
    response = client.rest_client.request(
        method, url, headers=headers, body=dict(body) if body is not None else None,
        _request_timeout=timeout)
    if not 200 <= response.status <= 299:
        data = response.read()
        raise ApiException.from_response(
            http_resp=response, body=data.decode("utf-8", "replace"), data=None)
    return response


def call_json(client: Any, method: str, path: str, *, body: Mapping[str, Any] | None = None,
              content_type: str = JSON, timeout: float) -> dict[str, Any]:
    """`method` on `path` (from the API server's root) with `body`; the answer, parsed.
    `client`: a `kubernetes.client.ApiClient`."""
    response = send(client, method, path, body=body, content_type=content_type,
                    timeout=timeout)
    result: dict[str, Any] = orjson.loads(response.read())
    return result
