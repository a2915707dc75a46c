"""Change Ferry's objects with merge patches, guarded by `resourceVersion` where it matters.

A patch that carries `metadata.resourceVersion` is applied only if the object has not changed
since that version; otherwise the API server answers 409 and the caller re-reads and decides
again (another controller replica, or Tekton, moved first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ci.kube.errors import ObjectGoneError, PatchConflictError
from ci.kube.plain import call_json
from ci.kube.resources import ResourceKind
from ci.logs import excerpt

# The errors too: callers catch `patching.PatchConflictError` beside the call that raises it.
__all__ = ["MERGE_PATCH", "ObjectGoneError", "PatchConflictError", "delete", "merge_patch", "read"]

MERGE_PATCH = "application/merge-patch+json"


def _translated(error: Exception) -> Exception:
    status = getattr(error, "status", None)
    if status == 409:
        return PatchConflictError(excerpt(str(error)))
    if status == 404:
        return ObjectGoneError(excerpt(str(error)))
    return error


def merge_patch(
    api: Any,  # kubernetes.client.CustomObjectsApi
    kind: ResourceKind,
    *,
    namespace: str,
    name: str,
    patch: Mapping[str, Any],
    resource_version: str | None = None,
    timeout: float,
) -> dict[str, Any]:
    """Apply `patch`; with `resource_version`, only to that version of the object."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 (kept lazy)

    body = dict(patch)
    if resource_version is not None:
        metadata = dict(body.get("metadata") or {})
        metadata["resourceVersion"] = resource_version
        body["metadata"] = metadata
    client = _client_of(api)
    try:
        if client is not None:
            return call_json(client, "PATCH", kind.path(namespace, name),
                             body=body, content_type=MERGE_PATCH, timeout=timeout)
        result: dict[str, Any] = api.patch_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural, name, body,
            _content_type=MERGE_PATCH, _request_timeout=timeout,
        )
    except ApiException as error:
        raise _translated(error) from error
    return result


def read(
    api: Any, kind: ResourceKind, *, namespace: str, name: str, timeout: float
) -> dict[str, Any] | None:
    """The object as it is now, or None if it is gone."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    client = _client_of(api)
    try:
        if client is not None:
            return call_json(client, "GET", kind.path(namespace, name), timeout=timeout)
        result: dict[str, Any] = api.get_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural, name, _request_timeout=timeout
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return result


def delete(
    api: Any, kind: ResourceKind, *, namespace: str, name: str, uid: str, timeout: float
) -> bool:
    """Delete that very object (by uid, not a newer one of the same name); False if gone."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        api.delete_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural, name,
            body={"preconditions": {"uid": uid}, "propagationPolicy": "Background"},
            _request_timeout=timeout,
        )
    except ApiException as error:
        if error.status in (404, 409):
            return False
        raise
    return True


# -- where the calls go --------------------------------------------------------------------


def _client_of(api: Any) -> Any:
    """The `ApiClient` under a `CustomObjectsApi`; None for the unit tests' fakes, which are
    called through the generated methods instead."""
    return getattr(api, "api_client", None)
