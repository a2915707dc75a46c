"""Ferry's PipelineRuns: create idempotently, find by labels, cancel, delete.

Shared by the receiver (create, cancel superseded runs) and the controller (watch, prune).
Every method blocks on the API server: call it from a worker thread in async code.
Failures to reach the API server, and its 5xx answers, are `ApiUnavailableError`, which the
receiver answers with 503 so the forge shows the delivery as failed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ci.kube import labels
from ci.kube.errors import ApiRefusedError, ApiUnavailableError
from ci.kube.plain import call_json
from ci.kube.resources import PIPELINE_RUN, SECRET, TASK_RUN, ResourceKind

# Labels the compiler does not set: which Repository object a run belongs to (its name, and
# its uid so a run survives its Repository being recreated under the same name unconfused).
REPOSITORY_OBJECT_LABEL = f"{labels.PREFIX}repository-object"
REPOSITORY_UID_LABEL = f"{labels.PREFIX}repository-uid"
EVENT_LABEL = f"{labels.PREFIX}event"
CANCELLED = "Cancelled"  # Tekton v1's spec.status for "stop everything now"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedRun:
    name: str
    namespace: str
    uid: str
    created: bool  # False: a run of that name existed already (a redelivery), and is reported


@contextmanager
def translate_api_errors(what: str) -> Iterator[None]:
    """Kubernetes client errors as `ApiUnavailableError` (retry later) or `ApiRefusedError`."""
    import urllib3  # noqa: PLC0415 (the Kubernetes client's transport; kept lazy)
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        yield
    except ApiException as error:
        status = int(error.status or 0)
        if status == 0 or status >= 500 or status == 429:
            raise ApiUnavailableError(f"{what}: {status} {error.reason}") from error
        raise ApiRefusedError(f"{what}: {status} {error.reason}", status=status) from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ApiUnavailableError(f"{what}: {type(error).__name__}: {error}") from error


def get_object(custom: Any, kind: ResourceKind, namespace: str, name: str, *,
               timeout: float) -> dict[str, Any] | None:
    """One namespaced custom object as the API server holds it, or None if there is none
    (404); other refusals and unavailability raise as `translate_api_errors` says."""
    try:
        with translate_api_errors(f"read {kind.kind} {namespace}/{name}"):
            found: Any = custom.get_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name,
                _request_timeout=timeout,
            )
    except ApiRefusedError as error:
        if error.status == 404:
            return None
        raise
    return dict(found)


class PipelineRuns:
    """PipelineRuns (and their per-run Secrets) through one `kubernetes.client.ApiClient`."""

    def __init__(self, api_client: Any, *, request_timeout: float) -> None:
        from kubernetes.client import CustomObjectsApi, VersionApi  # noqa: PLC0415

        self._api_client = api_client
        self._custom = CustomObjectsApi(api_client)
        self._version = VersionApi(api_client)
        self._timeout = request_timeout

    def create(self, run: Mapping[str, Any]) -> CreatedRun:
        """Create `run`; an existing run of the same name is the same run (409 is success)."""
        metadata = run["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        kind = PIPELINE_RUN
        try:
            with translate_api_errors(f"create PipelineRun {namespace}/{name}"):
                created = call_json(
                    self._api_client, "POST",
                    f"/apis/{kind.group}/{kind.version}/namespaces/{namespace}/{kind.plural}",
                    body=run, timeout=self._timeout,
                )
        except ApiRefusedError as error:
            if error.status != 409:
                raise
            existing = self.get(namespace, name)
            uid = str((existing or {}).get("metadata", {}).get("uid", ""))
            return CreatedRun(name=name, namespace=namespace, uid=uid, created=False)
        return CreatedRun(
            name=name, namespace=namespace, uid=str(created["metadata"]["uid"]), created=True
        )

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return get_object(self._custom, PIPELINE_RUN, namespace, name, timeout=self._timeout)

    def task_runs(self, namespace: str, pipeline_run: str) -> list[dict[str, Any]]:
        """The TaskRuns Tekton made for `pipeline_run` (by its `tekton.dev/pipelineRun`)."""
        wanted = f"{labels.TEKTON_PIPELINE_RUN}={pipeline_run}"
        kind = TASK_RUN
        with translate_api_errors(f"list the TaskRuns of {namespace}/{pipeline_run}"):
            listed: Any = self._custom.list_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, label_selector=wanted,
                _request_timeout=self._timeout,
            )
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    def list(self, namespace: str, *, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        """Ferry's runs in `namespace` carrying all the labels of `selector`."""
        wanted = ",".join([labels.MANAGED_SELECTOR, *(f"{k}={v}" for k, v in selector.items())])
        kind = PIPELINE_RUN
        with translate_api_errors(f"list PipelineRuns in {namespace}"):
            listed: Any = self._custom.list_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, label_selector=wanted,
                _request_timeout=self._timeout,
            )
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    def cancel(self, namespace: str, name: str) -> bool:
        """Ask Tekton to stop the run (`spec.status: Cancelled`); False if it is gone."""
        kind = PIPELINE_RUN
        try:
            with translate_api_errors(f"cancel PipelineRun {namespace}/{name}"):
                self._custom.patch_namespaced_custom_object(
                    kind.group, kind.version, namespace, kind.plural, name,
                    {"spec": {"status": CANCELLED}},
                    _content_type="application/merge-patch+json",
                    _request_timeout=self._timeout,
                )
        except ApiRefusedError as error:
            if error.status == 404:
                return False
            raise
        return True

    def create_owned_secret(
        self, run: CreatedRun, *, name: str, data: Mapping[str, str]
    ) -> None:
        """A Secret that lives and dies with `run` (garbage-collected with it); an existing
        one of that name (a redelivery) is kept."""
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": run.namespace,
                "labels": {labels.MANAGED_BY: labels.MANAGED_BY_FERRY},
                "ownerReferences": [
                    {
                        "apiVersion": PIPELINE_RUN.api_version,
                        "kind": PIPELINE_RUN.kind,
                        "name": run.name,
                        "uid": run.uid,
                        "blockOwnerDeletion": False,
                    }
                ],
            },
            "type": "Opaque",
            "data": {
                key: base64.b64encode(value.encode("utf-8")).decode("ascii")
                for key, value in data.items()
            },
        }
        try:
            with translate_api_errors(f"create Secret {run.namespace}/{name}"):
                call_json(self._api_client, "POST", SECRET.path(run.namespace),
                          body=body, timeout=self._timeout)
        except ApiRefusedError as error:
            if error.status != 409:
                raise

    def reachable(self) -> bool:
        """Whether the API server answers at all (for readiness probes)."""
        try:
            with translate_api_errors("read /version"):
                self._version.get_code(_request_timeout=self._timeout)
        except (ApiUnavailableError, ApiRefusedError):
            return False
        return True
