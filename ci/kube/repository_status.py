"""A Repository's status: `lastEvent`, the last delivery the receiver handled for it, and
`schedules`, what the controller started of `spec.schedules`.

What `kubectl get repositories` shows in its Last-Event and Outcome columns, so a platform
engineer can tell "the forge never called" from "Ferry refused it" without reading logs.
Written with a merge patch on the `/status` subresource, which leaves `spec` and the
`conditions` alone and needs only `patch` on `repositories/status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ci.kube.pipeline_runs import translate_api_errors
from ci.kube.repositories import Repository
from ci.kube.resources import REPOSITORY

MERGE_PATCH = "application/merge-patch+json"
# Characters of the message kept: the status is shown by kubectl and stored in etcd with the
# object; an invalid spec's full problem list belongs on the commit, not here.
MESSAGE_LIMIT = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class LastEvent:
    delivery_id: str
    kind: str  # push, pull_request, tag, comment, ping, or the forge's name of an ignored event
    outcome: str  # the receiver's metrics outcome: created, existing, invalid-spec, ...
    time: str  # RFC 3339, UTC
    ref: str = ""
    sha: str = ""
    message: str = ""
    pipeline_runs: tuple[str, ...] = ()

    def as_status(self) -> dict[str, Any]:
        message = self.message
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 3] + "..."
        return {
            "lastEvent": {
                "deliveryID": self.delivery_id,
                "kind": self.kind,
                "ref": self.ref,
                "sha": self.sha,
                "outcome": self.outcome,
                "message": message,
                # A merge patch replaces a list whole: an event without runs clears the last.
                "pipelineRuns": list(self.pipeline_runs),
                "time": self.time,
            }
        }


class RepositoryStatusWriter:
    """Blocks on the API server: call it from a worker thread in async code."""

    def __init__(self, api_client: Any, *, request_timeout: float) -> None:
        from kubernetes.client import CustomObjectsApi  # noqa: PLC0415 (kept lazy)

        self._custom = CustomObjectsApi(api_client)
        self._timeout = request_timeout

    def write_last_event(self, repository: Repository, event: LastEvent) -> None:
        """Raises `ApiUnavailableError` or `ApiRefusedError` (404: the Repository is gone)."""
        kind = REPOSITORY
        with translate_api_errors(f"patch Repository {repository.key} status"):
            self._custom.patch_namespaced_custom_object_status(
                kind.group, kind.version, repository.namespace, kind.plural, repository.name,
                {"status": event.as_status()},
                _content_type=MERGE_PATCH, _request_timeout=self._timeout,
            )

    def write_schedules(self, repository: Repository, status: dict[str, Any]) -> None:
        """`status.schedules` and `status.nextScheduledRun`, the controller's (a merge patch
        replaces the list whole, which only the controller writes)."""
        kind = REPOSITORY
        with translate_api_errors(f"patch Repository {repository.key} status"):
            self._custom.patch_namespaced_custom_object_status(
                kind.group, kind.version, repository.namespace, kind.plural, repository.name,
                {"status": status},
                _content_type=MERGE_PATCH, _request_timeout=self._timeout,
            )
