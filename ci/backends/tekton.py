"""The Tekton backend: compile a plan into a PipelineRun in the Repository's namespace.

Runs carry the compiler's `ferry.dev/*` labels plus the Repository object's name and uid, so
the controller and the cancellations below find them by label, never by listing everything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ci.backends import PreviousRun, RunRequest, SubmittedRun, happened_before
from ci.controller.runs import RunSnapshot, TaskRunSnapshot, observe
from ci.kube import labels
from ci.kube.binding import DEFAULT_WINDOW, BindingKeys, refusal_for, sign, signed_fields
from ci.kube.pipeline_runs import (
    EVENT_LABEL,
    REPOSITORY_OBJECT_LABEL,
    REPOSITORY_UID_LABEL,
    ApiRefusedError,
    ApiUnavailableError,
    PipelineRuns,
)
from ci.kube.repositories import Repository
from pipelines.events import EventKind
from pipelines.names import label_value, pipeline_run_name
from pipelines.tekton import (
    CLONE_TOKEN_KEY,
    UNTRUSTED_LABEL,
    CompileOptions,
    compile_pipeline_run,
)

# `spec.status` values with which Tekton is already stopping a run (`PipelineRunPending` is
# not one: a pending run has not started yet, and is cancelled like a running one).
_STOPPING = frozenset({"Cancelled", "CancelledRunFinally", "StoppedRunFinally"})
CLONE_SECRET_SUFFIX = "-clone"  # noqa: S105 (a name suffix, not a secret)


@dataclass(frozen=True, slots=True, kw_only=True)
class TektonOptions:
    name_prefix: str = ""
    clone_image: str = "docker.io/alpine/git:2.45.2"
    ferry_version: str = "dev"


class TektonBackend:
    # The controller reports every run it sees, from queued to the verdict, exactly once.
    reports_runs = True

    def __init__(self, runs: PipelineRuns, *, options: TektonOptions,
                 binding_keys: Callable[[], BindingKeys]) -> None:
        """`binding_keys` blocks (it may read the key's Secret): called in a thread."""
        self._runs = runs
        self._options = options
        self._binding_keys = binding_keys

    async def submit(self, request: RunRequest) -> SubmittedRun:
        repository = request.repository
        prefix = self._options.name_prefix + request.name_prefix
        name = pipeline_run_name(request.event, prefix=prefix)
        secret_name = f"{name}{CLONE_SECRET_SUFFIX}" if request.clone_token else None
        run = compile_pipeline_run(
            request.plan,
            request.event,
            options=CompileOptions(
                namespace=repository.namespace,
                name_prefix=prefix,
                service_account=repository.service_account,
                untrusted=not request.trusted,
                clone_image=self._options.clone_image,
                ferry_version=self._options.ferry_version,
                clone_secret=secret_name,
            ),
        )
        run["metadata"]["labels"] |= repository_labels(repository)
        if request.note:
            # The controller, which reports the run, shows it in the run's status description.
            run["metadata"].setdefault("annotations", {})[labels.NOTE] = request.note
        group = _group_labels(request)
        if request.concurrency_limit is not None and group is not None:
            # Held back until the controller admits it under the group's limit.
            # The group is a label (the controller selects a group's runs by it); the limit
            # is an annotation, which is where the controller's admission reads it.
            run["metadata"]["labels"][labels.CONCURRENCY_GROUP] = concurrency_group(
                repository, group
            )
            run["metadata"].setdefault("annotations", {})[labels.CONCURRENCY_LIMIT] = str(
                request.concurrency_limit
            )
            run["spec"]["status"] = labels.PENDING
        # Last, over every label and annotation: the controller reports no run without it.
        keys = await asyncio.to_thread(self._binding_keys)
        bind(run, repository, keys, signed_at=int(time.time()))
        created = await asyncio.to_thread(self._runs.create, run)
        if not created.created:
            # A redelivery finds the run of its first delivery; anything else of that name
            # (a team member's run made ahead) is not ours, and gets no clone token.
            await asyncio.to_thread(self._check_existing, created.namespace, created.name,
                                    repository, keys)
        if request.clone_token and secret_name:
            # After the run, so the Secret can name it as owner and go when it goes. Until the
            # Secret exists the clone step's pod waits (its env cannot be resolved yet), which
            # is a moment, not a failure. Also for an existing run: the first delivery may
            # have died between the two calls.
            await asyncio.to_thread(
                self._runs.create_owned_secret,
                created,
                name=secret_name,
                data={CLONE_TOKEN_KEY: request.clone_token},
            )
        return SubmittedRun(name=created.name, created=created.created)

    def _check_existing(self, namespace: str, name: str, repository: Repository,
                        keys: BindingKeys) -> None:
        existing = self._runs.get(namespace, name)
        if existing is None:
            return  # deleted since: nothing to answer for
        metadata = existing.get("metadata") or {}
        refusal = refusal_for(
            namespace=namespace, name=name, run_labels=metadata.get("labels") or {},
            run_annotations=metadata.get("annotations") or {},
            created=str(metadata.get("creationTimestamp", "")), repository=repository,
            keys=keys, window=DEFAULT_WINDOW,
        )
        if refusal is not None:
            raise ApiRefusedError(
                f"PipelineRun {namespace}/{name} exists but Ferry's receiver did not make it "
                f"for this Repository ({refusal.value}); it is never reported: delete it and "
                "redeliver", status=409)

    async def cancel_superseded(self, request: RunRequest, *, newest: str) -> tuple[str, ...]:
        group = _group_labels(request)
        if group is None:
            return ()  # tags and manual runs have no "newer run of the same thing"
        selector = repository_labels(request.repository) | group
        runs = await asyncio.to_thread(
            self._runs.list, request.repository.namespace, selector=selector
        )
        by_name = {run["metadata"]["name"]: run for run in runs}
        newest_run = by_name.get(newest)
        created = _created(newest_run) if newest_run else None
        older = [
            name
            for name, run in sorted(by_name.items())
            if name != newest and is_unfinished(run)
            and happened_before(_event_time(run), _created(run),
                                than=(request.event.happened_at, created))
        ]
        return await self._cancel(request.repository.namespace, older)

    async def cancel_pull_request(self, repository: Repository, number: int) -> tuple[str, ...]:
        selector = repository_labels(repository) | {labels.PULL_REQUEST: str(number)}
        runs = await asyncio.to_thread(self._runs.list, repository.namespace, selector=selector)
        names = sorted(run["metadata"]["name"] for run in runs if is_unfinished(run))
        return await self._cancel(repository.namespace, names)

    async def cancel_run(self, repository: Repository, name: str) -> bool:
        run = await asyncio.to_thread(self._runs.get, repository.namespace, name)
        if run is None or not is_unfinished(run):
            return False
        owner = ((run.get("metadata") or {}).get("labels") or {}).get(REPOSITORY_OBJECT_LABEL)
        if owner != repository.name:
            return False
        return bool(await self._cancel(repository.namespace, [name]))

    async def newest_run(
        self, repository: Repository, sha: str, *, pull_request: int | None = None
    ) -> PreviousRun | None:
        selector = repository_labels(repository) | {labels.SHA: label_value(sha)}
        if pull_request is not None:
            selector[labels.PULL_REQUEST] = str(pull_request)
        runs = await asyncio.to_thread(self._runs.list, repository.namespace, selector=selector)
        # The label may be cut; the annotation keeps the whole sha.
        runs = [run for run in runs if _annotations(run).get(labels.SHA) == sha]
        if not runs:
            return None
        newest = max(runs, key=lambda run: (_created(run), run["metadata"]["name"]))
        snapshot = RunSnapshot.of(newest)
        task_runs = await asyncio.to_thread(
            self._runs.task_runs, repository.namespace, snapshot.name
        )
        state = observe(snapshot, [TaskRunSnapshot.of(task_run) for task_run in task_runs])
        number = snapshot.labels.get(labels.PULL_REQUEST)
        return PreviousRun(
            name=snapshot.name,
            trusted=snapshot.labels.get(UNTRUSTED_LABEL) != "true",
            finished=not is_unfinished(newest),
            pull_request=int(number) if number and number.isdigit() else None,
            jobs={job.name: job.conclusion for job in state.jobs},
        )

    async def ready(self) -> str | None:
        reachable = await asyncio.to_thread(self._runs.reachable)
        if not reachable:
            return "the Kubernetes API server does not answer"
        try:
            await asyncio.to_thread(self._binding_keys)
        except (ApiRefusedError, ApiUnavailableError) as error:
            # Without it no run can be signed, so none would ever be reported.
            return f"the binding key cannot be read: {error}"
        return None

    async def _cancel(self, namespace: str, names: list[str]) -> tuple[str, ...]:
        cancelled = []
        for name in names:
            if await asyncio.to_thread(self._runs.cancel, namespace, name):
                cancelled.append(name)
        return tuple(cancelled)


def bind(run: dict[str, Any], repository: Repository, keys: BindingKeys, *, signed_at: int
         ) -> None:
    """Sign `run` (a PipelineRun about to be created) for `repository` (`ci.kube.binding`)."""
    metadata = run["metadata"]
    annotations = metadata.setdefault("annotations", {})
    annotations.pop(labels.BINDING, None)
    fields = signed_fields(
        namespace=metadata["namespace"], name=metadata["name"],
        run_labels=metadata.get("labels") or {}, run_annotations=annotations,
        repository=repository,
    )
    annotations[labels.BINDING] = sign(fields, keys, signed_at=signed_at)


def repository_labels(repository: Repository) -> dict[str, str]:
    return {
        REPOSITORY_OBJECT_LABEL: repository.name,
        REPOSITORY_UID_LABEL: label_value(repository.uid),
    }


def concurrency_group(repository: Repository, group: Mapping[str, str]) -> str:
    """A label-safe name for the runs of one branch or pull request of one Repository."""
    return label_value(".".join([repository.name, *group.values()]))


def _group_labels(request: RunRequest) -> dict[str, str] | None:
    event = request.event
    if event.pull_request is not None:
        return {labels.PULL_REQUEST: str(event.pull_request.number)}
    if event.kind is EventKind.PUSH and event.branch:
        return {EVENT_LABEL: EventKind.PUSH.value, labels.BRANCH: label_value(event.branch)}
    return None


def is_unfinished(run: Mapping[str, Any]) -> bool:
    """Not yet succeeded, failed or asked to stop."""
    if (run.get("spec") or {}).get("status") in _STOPPING:
        return False
    for condition in (run.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Succeeded":
            return bool(condition.get("status") == "Unknown")
    return True  # not reconciled yet


def _event_time(run: Mapping[str, Any]) -> str | None:
    annotations = (run.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(labels.EVENT_TIME)
    return str(value) if value else None


def _annotations(run: Mapping[str, Any]) -> Mapping[str, str]:
    return (run.get("metadata") or {}).get("annotations") or {}


def _created(run: Mapping[str, Any]) -> str:
    # RFC 3339 in UTC with a fixed width: string order is time order.
    return str((run.get("metadata") or {}).get("creationTimestamp", ""))
