"""What the controller keeps of a PipelineRun and its TaskRuns, and what state they are in.

Full objects carry the whole compiled `pipelineSpec` (tens of kilobytes) and the API server's
`managedFields`; with ten thousand runs in a cluster that is hundreds of megabytes for
nothing. The watches make a snapshot of each object as soon as it is parsed (`RunSnapshot.of`
and `TaskRunSnapshot.of` are their `convert`: a relist holds at most two pages as whole
objects, and no dict of a run is kept), with only the fields the controller reads. Strings every
run repeats (label keys, namespaces, job names, reasons) are shared, and so are equal tasks
and conditions.

The snapshots are `msgspec.Struct`s (a restart makes one per run, and `observe` a state and a
job each): made in C, about 6 us a run sooner than frozen dataclasses, whose `__init__` sets
each field through `object.__setattr__`. `Condition` stays a dataclass: its conclusion is a
field `__init__` does not take, which a Struct cannot have, and equal conditions are one object.
"""

from __future__ import annotations

import datetime
import functools
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgspec
from msgspec import Struct

from ci.controller.conditions import conclusion_of, succeeded_condition
from ci.forges.statuses import Conclusion
from ci.kube import labels

RunKey = tuple[str, str]  # (namespace, name)
# Steps of a matrix variant read its values from these variables (`pipelines.matrices`).
MATRIX_PREFIX = "MATRIX_"


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    status: str = "Unknown"
    reason: str = ""
    message: str = ""
    # Found once: every decision about a run reads it, and equal conditions are one object
    # (`_condition`), so this costs one table lookup per distinct condition, not per read.
    conclusion: Conclusion = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "conclusion", conclusion_of(self.status, self.reason))

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Condition | None:
        found = succeeded_condition(obj)
        if found is None:
            return None
        return _condition(str(found.get("status", "Unknown")), str(found.get("reason", "")),
                          str(found.get("message", "")))


class PipelineTask(Struct, frozen=True, kw_only=True):
    name: str  # the pipeline task's name, Tekton's `tekton.dev/pipelineTask` label
    job: str  # Ferry's job name (the taskSpec's `ferry.dev/job` label), shown on the forge
    spec_job: str = ""  # the `.ci.yaml` job (`ferry.dev/spec-job`; a variant's own job)
    variant: str = ""  # a matrix variant's values, "os=bookworm, python=3.11"; or ""


class RunSnapshot(Struct, frozen=True, kw_only=True):
    namespace: str
    name: str
    uid: str
    resource_version: str
    created: str  # RFC 3339, as the API server wrote it; sorts chronologically
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)
    annotations: Mapping[str, str] = msgspec.field(default_factory=dict)
    spec_status: str | None = None  # "PipelineRunPending", "Cancelled", ...
    tasks: tuple[PipelineTask, ...] = ()
    secret_refs: frozenset[tuple[str, str]] = frozenset()  # (Secret name, key) the steps read
    condition: Condition | None = None
    start_time: str | None = None
    completion_time: str | None = None
    skipped_tasks: frozenset[str] = frozenset()
    deleting: bool = False

    @property
    def key(self) -> RunKey:
        return (self.namespace, self.name)

    @property
    def conclusion(self) -> Conclusion:
        if self.condition is None:
            return Conclusion.QUEUED
        return self.condition.conclusion

    @property
    def pending(self) -> bool:
        return self.spec_status == labels.PENDING

    @property
    def active(self) -> bool:
        """Admitted and not finished: it holds one of its concurrency group's slots."""
        return not self.pending and not self.conclusion.final

    @property
    def repository(self) -> str | None:
        return self.annotations.get(labels.REPOSITORY)

    @property
    def repository_url(self) -> str | None:
        return self.annotations.get(labels.REPOSITORY_URL)

    @property
    def sha(self) -> str | None:
        return self.annotations.get(labels.SHA)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> RunSnapshot:
        metadata = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        pipeline_spec = spec.get("pipelineSpec") or {}
        tasks: list[PipelineTask] = []
        secret_refs: set[tuple[str, str]] = set()
        for task in [*(pipeline_spec.get("tasks") or ()), *(pipeline_spec.get("finally") or ())]:
            task_spec = task.get("taskSpec") or {}
            task_labels = (task_spec.get("metadata") or {}).get("labels") or {}
            name = str(task.get("name", ""))
            job = str(task_labels.get(labels.JOB, name))
            tasks.append(_task(name, job, str(task_labels.get(labels.SPEC_JOB, job)),
                               _variant(task_spec)))
            secret_refs.update(_secret_refs(task_spec))
        skipped = status.get("skippedTasks")
        return cls(
            namespace=sys.intern(str(metadata.get("namespace", ""))),
            name=str(metadata.get("name", "")),
            uid=str(metadata.get("uid", "")),
            resource_version=str(metadata.get("resourceVersion", "")),
            created=str(metadata.get("creationTimestamp", "")),
            labels=own_fields(metadata.get("labels")),
            annotations=own_fields(metadata.get("annotations")),
            spec_status=_shared(spec.get("status")),
            tasks=_tasks(tuple(tasks)),
            secret_refs=frozenset(secret_refs) if secret_refs else _NONE,
            condition=Condition.of(obj),
            start_time=status.get("startTime"),
            completion_time=status.get("completionTime"),
            skipped_tasks=(frozenset(sys.intern(str(task.get("name", ""))) for task in skipped)
                           if skipped else _NONE),
            deleting=bool(metadata.get("deletionTimestamp")),
        )


# -- sharing -----------------------------------------------------------------------------

# Values that differ on every run: sharing them would only fill the interning table.
_UNIQUE = frozenset({labels.SHA, labels.BINDING, labels.REPORTED, labels.ARCHIVED,
                     labels.EVENT_TIME, labels.NOTE})
_NONE: frozenset[Any] = frozenset()
_EMPTY: Mapping[str, str] = MappingProxyType({})
# Distinct tasks, task lists and conditions remembered; more are made anew (never wrong).
_SHARED_MAX = 4096


def own_fields(values: Mapping[str, Any] | None) -> Mapping[str, str]:
    """The labels or annotations the controller reads: Ferry's (`ferry.dev/*`, the binding
    covers all of them), the managed-by label and Tekton's (`tekton.dev/*`). Others (a
    `kubectl apply` copy of the whole object, say) are dropped."""
    if not values:
        return _EMPTY
    kept = {
        sys.intern(key): value if key in _UNIQUE else sys.intern(value)
        for key, value in values.items()
        if isinstance(value, str) and (key.startswith(_OWN_PREFIXES) or key == labels.MANAGED_BY)
    }
    return MappingProxyType(kept) if kept else _EMPTY


_OWN_PREFIXES = (labels.PREFIX, "tekton.dev/")


def _shared(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


@functools.lru_cache(maxsize=_SHARED_MAX)
def _condition(status: str, reason: str, message: str) -> Condition:
    return Condition(status=status, reason=reason, message=message)


@functools.lru_cache(maxsize=_SHARED_MAX)
def _task(name: str, job: str, spec_job: str, variant: str) -> PipelineTask:
    return PipelineTask(name=name, job=job, spec_job=spec_job, variant=variant)


@functools.lru_cache(maxsize=_SHARED_MAX)
def _tasks(tasks: tuple[PipelineTask, ...]) -> tuple[PipelineTask, ...]:
    return tasks


def _variant(task_spec: Mapping[str, Any]) -> str:
    """The matrix values the compiler gave each step (`MATRIX_<KEY>`, see
    `pipelines.matrices.matrix_env_name`), as "key=value, ..." sorted by key."""
    values: dict[str, str] = {}
    for step in task_spec.get("steps") or ():
        for variable in step.get("env") or ():
            name = str(variable.get("name", ""))
            if name.startswith(MATRIX_PREFIX) and "value" in variable:
                values[name.removeprefix(MATRIX_PREFIX).lower()] = str(variable["value"])
    return ", ".join(f"{key}={value}" for key, value in sorted(values.items()))


def _secret_refs(task_spec: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    containers = [*(task_spec.get("steps") or ()), *(task_spec.get("sidecars") or ())]
    template = task_spec.get("stepTemplate")
    if template:
        containers.append(template)
    for container in containers:
        for variable in container.get("env") or ():
            reference = (variable.get("valueFrom") or {}).get("secretKeyRef")
            if reference and reference.get("name") and reference.get("key"):
                yield (str(reference["name"]), str(reference["key"]))


class Step(Struct, frozen=True, kw_only=True):
    name: str
    container: str
    exit_code: int | None = None  # None: not terminated
    termination_reason: str = ""
    started_at: str | None = None  # RFC 3339, from the container's `terminated` state
    finished_at: str | None = None


class TaskRunSnapshot(Struct, frozen=True, kw_only=True):
    namespace: str
    name: str
    pipeline_run: str
    pipeline_task: str
    condition: Condition | None = None
    start_time: str | None = None
    completion_time: str | None = None
    pod_name: str | None = None
    steps: tuple[Step, ...] = ()

    @property
    def conclusion(self) -> Conclusion:
        return Conclusion.QUEUED if self.condition is None else self.condition.conclusion

    @property
    def failing_step(self) -> Step | None:
        """The first step that exited non-zero for real (not skipped after another's failure)."""
        for step in self.steps:
            if step.exit_code not in (None, 0) and step.termination_reason != "Skipped":
                return step
        return None

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> TaskRunSnapshot:
        metadata = obj.get("metadata") or {}
        object_labels = metadata.get("labels") or {}
        status = obj.get("status") or {}
        steps = []
        for step in status.get("steps") or ():
            terminated = step.get("terminated") or {}
            exit_code = terminated.get("exitCode")
            steps.append(
                Step(
                    name=str(step.get("name", "")),
                    container=str(step.get("container", f"step-{step.get('name', '')}")),
                    exit_code=int(exit_code) if exit_code is not None else None,
                    termination_reason=str(
                        step.get("terminationReason") or terminated.get("reason") or ""
                    ),
                    started_at=terminated.get("startedAt"),
                    finished_at=terminated.get("finishedAt"),
                )
            )
        return cls(
            namespace=sys.intern(str(metadata.get("namespace", ""))),
            name=str(metadata.get("name", "")),
            pipeline_run=str(object_labels.get(labels.TEKTON_PIPELINE_RUN, "")),
            pipeline_task=sys.intern(str(object_labels.get(labels.TEKTON_PIPELINE_TASK, ""))),
            condition=Condition.of(obj),
            start_time=status.get("startTime"),
            completion_time=status.get("completionTime"),
            pod_name=status.get("podName"),
            steps=tuple(steps),
        )


class ObservedJob(Struct, frozen=True, kw_only=True):
    """One job of a run as the watch observed it: its conclusion and its TaskRun. (A job's
    state while it runs on this machine is `ci.local.outcomes.JobState`.)"""

    name: str
    pipeline_task: str
    conclusion: Conclusion
    task_run: TaskRunSnapshot | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to completion; None until both are known."""
        if self.task_run is None:
            return None
        return seconds_between(self.task_run.start_time, self.task_run.completion_time)


class RunState(Struct, frozen=True, kw_only=True):
    run: RunSnapshot
    conclusion: Conclusion
    jobs: tuple[ObservedJob, ...]

    @property
    def duration(self) -> float | None:
        return seconds_between(self.run.start_time, self.run.completion_time)


# A job without a TaskRun when its run is over never started; it takes this conclusion.
_NEVER_STARTED: Mapping[Conclusion, Conclusion] = MappingProxyType(
    {
        Conclusion.SUCCESS: Conclusion.SKIPPED,
        Conclusion.FAILURE: Conclusion.SKIPPED,  # an earlier job failed
        Conclusion.NEUTRAL: Conclusion.SKIPPED,
        Conclusion.SKIPPED: Conclusion.SKIPPED,
        Conclusion.CANCELLED: Conclusion.CANCELLED,
        Conclusion.TIMED_OUT: Conclusion.CANCELLED,
        Conclusion.ERROR: Conclusion.ERROR,
    }
)


def observe(run: RunSnapshot, task_runs: Iterable[TaskRunSnapshot]) -> RunState:
    """The run's conclusion and each job's, in pipeline order.

    A job is never left in progress once its run is final: a check that stays yellow forever
    is worse than one that says the run ended.
    """
    by_task = {task_run.pipeline_task: task_run for task_run in task_runs}
    run_conclusion = run.conclusion
    jobs = []
    for task in run.tasks:
        task_run = by_task.get(task.name)
        if task_run is not None:
            conclusion = task_run.conclusion
        elif task.name in run.skipped_tasks:
            conclusion = Conclusion.SKIPPED
        else:
            conclusion = Conclusion.QUEUED
        if run_conclusion.final and not conclusion.final:
            conclusion = (
                _NEVER_STARTED[run_conclusion] if task_run is None else run_conclusion
            )
        jobs.append(
            ObservedJob(
                name=task.job, pipeline_task=task.name, conclusion=conclusion, task_run=task_run
            )
        )
    return RunState(run=run, conclusion=run_conclusion, jobs=tuple(jobs))


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def seconds_between(start: str | None, end: str | None) -> float | None:
    started, ended = parse_time(start), parse_time(end)
    if started is None or ended is None:
        return None
    return max(0.0, (ended - started).total_seconds())
