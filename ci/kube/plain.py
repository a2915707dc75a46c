"""One API server call as plain JSON, through a `kubernetes.client.ApiClient`'s connection
pool and credentials.

The client's generated methods validate every argument with pydantic and pass the body and
the answer through its model sanitiser (about a millisecond of CPU for a patch, three for a
created PipelineRun: more than the rest of the receiver's work on it). Here the REST layer's
one `json.dumps` and one `json.loads` are all the encoding. Errors are the client's
`ApiException`s, as the generated methods raise them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

JSON = "application/json"


def call_json(client: Any, method: str, path: str, *, body: Mapping[str, Any] | None = None,
              content_type: str = JSON, timeout: float) -> dict[str, Any]:
    """`method` on `path` (from the API server's root) with `body`; the answer, parsed.
    `client`: a `kubernetes.client.ApiClient`."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 (kept lazy)

    headers = {**client.default_headers, "Accept": JSON}
    if body is not None:
        headers["Content-Type"] = content_type
    client.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
    response = client.rest_client.request(
        method, client.configuration.host + path, headers=headers,
        body=dict(body) if body is not None else None, _request_timeout=timeout)
    data = response.read()
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(
            http_resp=response, body=data.decode("utf-8", "replace"), data=None)
    result: dict[str, Any] = json.loads(data)
    return result
