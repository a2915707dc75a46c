"""Every failure the Kubernetes adapter (`ci.kube`) raises, in one tree.

    KubernetesError
    ├── ApiUnavailableError       unreachable, or 5xx / 429: try again later
    ├── ApiRefusedError           refused for good (a 4xx, with its status)
    │   └── BindingKeyError       the binding key's Secret holds no usable key
    ├── PatchConflictError        409: the object changed since the patched version
    ├── ObjectGoneError           404: the object no longer exists
    ├── ResourceVersionGoneError  410 in a watch: only a fresh list can continue
    ├── WatchStoppedError         a watch stopped from another thread
    ├── LogUnavailableError       no log to read: the pod or container is gone
    ├── CredentialsError          a Repository's Secret is missing or lacks a key
    └── KubeconfigError           no kubeconfig, or one Ferry cannot use (the CLI)

Callers catch the leaf they answer differently; `KubernetesError` is everything the cluster
side can fail with. Remote messages are cut with `ci.logs.excerpt`.
"""

from __future__ import annotations

__all__ = [
    "ApiRefusedError",
    "ApiUnavailableError",
    "BindingKeyError",
    "CredentialsError",
    "KubeconfigError",
    "KubernetesError",
    "LogUnavailableError",
    "ObjectGoneError",
    "PatchConflictError",
    "ResourceVersionGoneError",
    "WatchStoppedError",
]


class KubernetesError(Exception):
    """A failure of Ferry's Kubernetes adapter; the message says what was asked."""


class ApiUnavailableError(KubernetesError):
    """The API server could not be reached, or answered 5xx: try again later."""


class ApiRefusedError(KubernetesError):
    """The API server refused the request for good (4xx other than 404/409)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BindingKeyError(ApiRefusedError):
    """The Secret exists but holds no usable key (too short, not base64...). An
    `ApiRefusedError`: the receiver answers it like any refusal of the cluster (502)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=500)


class PatchConflictError(KubernetesError):
    """The object changed since the version the patch was based on (409)."""


class ObjectGoneError(KubernetesError):
    """The object no longer exists (404)."""


class ResourceVersionGoneError(KubernetesError):
    """The watched resourceVersion is too old (410): only a fresh list can continue."""


class WatchStoppedError(KubernetesError):
    """The watch was stopped from another thread."""


class LogUnavailableError(KubernetesError):
    """The API server has no log to give: the pod (or its container) is gone, or never ran.
    The message says which, for the archive's `lost` record."""


class CredentialsError(KubernetesError):
    """The Secret a Repository names is missing or lacks a key; the message says which."""


class KubeconfigError(KubernetesError):
    """No kubeconfig, or one Ferry cannot use; the message says what to do."""
