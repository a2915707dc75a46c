"""Plain JSON requests to the test API server.

The generated ``kubernetes`` client turns every object into a model class and back, which is
slow for Tekton's large objects and lossy for fields the models do not know. Tests and the
simulated kubelet mostly want dicts, so this speaks JSON over the client's own connection pool
and credentials.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client

Obj = dict[str, Any]

# Kinds whose objects live outside namespaces; everything else is namespaced.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)


class KubeError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        try:
            self.reason: str = json.loads(body).get("reason", "")
        except ValueError:
            self.reason = ""
        super().__init__(f"{method} {path}: HTTP {status}: {body[:2000]}")


def plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


def collection_path(api_version: str, kind: str, namespace: str | None = None) -> str:
    """``/api/v1/namespaces/x/pods`` style path of a kind's collection."""
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if kind in CLUSTER_SCOPED_KINDS or namespace is None:
        return f"{prefix}/{plural(kind)}"
    return f"{prefix}/namespaces/{namespace}/{plural(kind)}"


def object_path(obj: Obj, namespace: str | None = None) -> str:
    metadata = obj.get("metadata", {})
    ns = namespace or metadata.get("namespace")
    return f"{collection_path(obj['apiVersion'], obj['kind'], ns)}/{metadata['name']}"


class Kube:
    """JSON requests with the credentials and connection pool of an ``ApiClient``."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api_client = api_client

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Obj | list[Any] | None = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 60.0,
    ) -> Obj:
        _, url, headers, _, _ = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query.items()) if query else None,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            auth_settings=["BearerToken"],
        )
        response = self.api_client.rest_client.pool_manager.request(
            method,
            url,
            body=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            timeout=timeout,
        )
        text = response.data.decode("utf-8", errors="replace")
        if not 200 <= response.status < 300:
            raise KubeError(method, path, response.status, text)
        result: Obj = json.loads(text) if text else {}
        return result

    # --- conveniences ------------------------------------------------------------------

    def get(self, path: str, **query: str) -> Obj:
        return self.request("GET", path, query=query or None)

    def create(self, obj: Obj, namespace: str | None = None) -> Obj:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return self.request("POST", collection_path(obj["apiVersion"], obj["kind"], ns), body=obj)

    def delete(self, path: str, *, missing_ok: bool = True) -> None:
        try:
            self.request("DELETE", path)
        except KubeError as error:
            if not (missing_ok and error.status == 404):
                raise

    def merge_patch(self, path: str, patch: Obj) -> Obj:
        return self.request("PATCH", path, body=patch, content_type="application/merge-patch+json")

    def exists(self, path: str) -> bool:
        try:
            self.request("GET", path)
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True
