"""RunRequest objects: a run asked for outside of any forge event (docs/schedules.md).

`ferry trigger` creates one with the user's own kubeconfig (event manual); the controller one
per scheduled time (event schedule), under a name made of the Repository, the schedule and the
time, so that two controllers creating it race to 409 and only one exists. The receiver turns
each into at most one run and writes what happened to its status.

`requestedBy` is the creator's user name as the API server authenticated it: the creator
reads it back with a SelfSubjectReview (`whoami`), and the ValidatingAdmissionPolicy
ferry-runrequest-requester refuses any other value, so a RunRequest cannot name someone else.
Every call blocks on the API server: call it from a worker thread in async code.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ci.kube.errors import ApiRefusedError
from ci.kube.patching import MERGE_PATCH
from ci.kube.pipeline_runs import get_object, translate_api_errors
from ci.kube.resources import REPOSITORY, RUN_REQUEST

SCHEDULE_LABEL = "ferry.dev/schedule"
REPOSITORY_LABEL = "ferry.dev/repository-object"
# Characters of a status message kept (the full story is on the commit).
MESSAGE_LIMIT = 1024
_NAME_LIMIT = 253


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """A `ferry.dev/v1alpha1` RunRequest, as its spec says (the CRD checked its shape)."""

    namespace: str
    name: str
    uid: str
    repository: str  # a Repository's name in `namespace`
    event: str  # "manual" or "schedule"
    requested_by: str
    branch: str | None = None
    sha: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    schedule: str | None = None
    scheduled_time: str | None = None
    outcome: str | None = None  # status.outcome; None: not handled yet
    resource_version: str = ""  # as observed: the outcome is written only onto this version

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> RunRequest:
        metadata = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return cls(
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            uid=str(metadata.get("uid", "")),
            repository=str(spec["repository"]),
            event=str(spec["event"]),
            requested_by=str(spec.get("requestedBy", "")),
            branch=spec.get("branch"),
            sha=spec.get("sha"),
            params=tuple((str(k), str(v)) for k, v in (spec.get("params") or {}).items()),
            schedule=spec.get("schedule"),
            scheduled_time=spec.get("scheduledTime"),
            outcome=status.get("outcome"),
            resource_version=str(metadata.get("resourceVersion", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the receiver did with a RunRequest, for its status."""

    outcome: str  # the receiver's outcome words: created, existing, no-spec, ...
    message: str = ""
    pipeline_run: str = ""
    sha: str = ""

    def as_status(self, moment: datetime.datetime) -> dict[str, Any]:
        message = self.message
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 3] + "..."
        return {
            "outcome": self.outcome, "message": message, "pipelineRun": self.pipeline_run,
            "sha": self.sha, "time": moment.astimezone(datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
        }


def scheduled_name(repository: str, schedule: str, moment: datetime.datetime) -> str:
    """The one name of the RunRequest for `schedule` of `repository` at `moment`."""
    stamp = moment.astimezone(datetime.UTC).strftime("%Y%m%d-%H%M")
    name = f"{repository}-{schedule}-{stamp}"
    if len(name) <= _NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    kept = repository[: _NAME_LIMIT - len(schedule) - len(stamp) - 13]
    return f"{kept}-{digest}-{schedule}-{stamp}"


def owned_by(repository: str, uid: str) -> list[dict[str, Any]]:
    """RunRequests belong to their Repository: deleting it deletes them (the garbage
    collector), so they do not outlive what they ask to run."""
    return [{"apiVersion": REPOSITORY.api_version, "kind": REPOSITORY.kind, "name": repository,
             "uid": uid}]


def schedule_body(*, namespace: str, repository: str, schedule: str, branch: str,
                  moment: datetime.datetime, requested_by: str, repository_uid: str = ""
                  ) -> dict[str, Any]:
    time = moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata: dict[str, Any] = {
        "name": scheduled_name(repository, schedule, moment), "namespace": namespace,
        "labels": {REPOSITORY_LABEL: repository[:63], SCHEDULE_LABEL: schedule},
    }
    if repository_uid:
        metadata["ownerReferences"] = owned_by(repository, repository_uid)
    return {
        "apiVersion": RUN_REQUEST.api_version, "kind": RUN_REQUEST.kind,
        "metadata": metadata,
        "spec": {
            "repository": repository, "event": "schedule", "branch": branch,
            "schedule": schedule, "scheduledTime": time, "requestedBy": requested_by,
        },
    }


def manual_body(*, namespace: str, repository: str, requested_by: str, branch: str | None,
                sha: str | None, params: Mapping[str, str], repository_uid: str = ""
                ) -> dict[str, Any]:
    spec: dict[str, Any] = {"repository": repository, "event": "manual",
                            "requestedBy": requested_by}
    if branch is not None:
        spec["branch"] = branch
    if sha is not None:
        spec["sha"] = sha
    if params:
        spec["params"] = dict(params)
    metadata: dict[str, Any] = {"generateName": f"{repository[:40]}-manual-",
                                "namespace": namespace,
                                "labels": {REPOSITORY_LABEL: repository[:63]}}
    if repository_uid:
        metadata["ownerReferences"] = owned_by(repository, repository_uid)
    return {"apiVersion": RUN_REQUEST.api_version, "kind": RUN_REQUEST.kind,
            "metadata": metadata, "spec": spec}


class RunRequests:
    """RunRequest calls through one `kubernetes.client.ApiClient`."""

    def __init__(self, api_client: Any, *, request_timeout: float) -> None:
        from kubernetes.client import CustomObjectsApi  # noqa: PLC0415 (kept lazy)

        self._client = api_client
        self._custom = CustomObjectsApi(api_client)
        self._timeout = request_timeout

    def create(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create `body`; returns the object and whether it is new (an existing one of the
        same name is the same request: False). Raises `ApiRefusedError` (403: no RBAC;
        422: the CRD or the admission policy refused it, with the API server's words)."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        kind = RUN_REQUEST
        namespace = body["metadata"]["namespace"]
        try:
            with translate_api_errors(f"create RunRequest in {namespace}"):
                try:
                    created: Any = self._custom.create_namespaced_custom_object(
                        kind.group, kind.version, namespace, kind.plural, dict(body),
                        _request_timeout=self._timeout,
                    )
                except ApiException as error:
                    status = int(error.status or 0)
                    if 400 <= status < 500 and status not in (409, 429):
                        raise ApiRefusedError(_server_message(error), status=status) from error
                    raise
        except ApiRefusedError as error:
            if error.status == 409:
                return dict(body), False
            raise
        return dict(created), True

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        kind = RUN_REQUEST
        with translate_api_errors(f"read RunRequest {namespace}/{name}"):
            found: Any = self._custom.get_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name,
                _request_timeout=self._timeout,
            )
        return dict(found)

    def write_outcome(self, request: RunRequest, outcome: Outcome) -> bool:
        """Write the outcome onto the version of the RunRequest that was handled; False if
        it changed since (another receiver replica wrote its outcome first: the first
        outcome stays, "created" rather than a later replica's "existing")."""
        kind = RUN_REQUEST
        body: dict[str, Any] = {
            "status": outcome.as_status(datetime.datetime.now(datetime.UTC))}
        if request.resource_version:
            body["metadata"] = {"resourceVersion": request.resource_version}
        try:
            with translate_api_errors(f"patch RunRequest {request.key} status"):
                self._custom.patch_namespaced_custom_object_status(
                    kind.group, kind.version, request.namespace, kind.plural, request.name,
                    body, _content_type=MERGE_PATCH, _request_timeout=self._timeout,
                )
        except ApiRefusedError as error:
            if error.status in (404, 409):
                return False
            raise
        return True

    def repository_uid(self, namespace: str, name: str) -> str | None:
        """The uid of Repository `name`, or None if there is none (404)."""
        found = get_object(self._custom, REPOSITORY, namespace, name, timeout=self._timeout)
        return str(found["metadata"]["uid"]) if found is not None else None

    def whoami(self) -> str:
        """This client's user name, as the API server authenticates it (a SelfSubjectReview,
        which every authenticated user may create)."""
        from kubernetes.client import AuthenticationV1Api, V1SelfSubjectReview  # noqa: PLC0415

        api = AuthenticationV1Api(self._client)
        with translate_api_errors("SelfSubjectReview"):
            review: Any = api.create_self_subject_review(
                V1SelfSubjectReview(api_version="authentication.k8s.io/v1",
                                    kind="SelfSubjectReview"),
                _request_timeout=self._timeout,
            )
        user = review.status.user_info if review.status is not None else None
        return str(user.username) if user is not None and user.username else ""


def _server_message(error: Any) -> str:
    """The API server's own words of a refusal (RBAC's, the CRD's or the policy's)."""
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or f"{error.status} {error.reason}")
