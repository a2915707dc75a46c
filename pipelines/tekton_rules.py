"""Tekton's own validation rules: what the compiler refuses in a plan, and what Tekton would
refuse in a compiled PipelineRun dict, checked without a cluster.

`refuse_untektonable(plan)` raises a `CompileError` for a plan Tekton cannot run as written
(`pipelines.tekton` calls it before compiling; the linter reports the same rules earlier,
with positions).

The CRD's OpenAPI schema stops at `pipelineSpec` (`x-kubernetes-preserve-unknown-fields`), and
Tekton's admission webhook enforces the rest. This module restates the rules Ferry's output
must keep (from `../shared/contracts/tekton/REFERENCE.md`), so that unit tests, golden files and
the cluster tests can all check them: `violations(run)` returns every broken rule as a sentence.
An empty tuple means Tekton should accept the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.planning import Plan, PlannedJob
from pipelines.problems import Position, Problem, Severity, SpecError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PARAM_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9.-]*$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
LABEL_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
GO_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
PARAM_REFERENCE = re.compile(r"\$\(params\.([_a-zA-Z][_a-zA-Z0-9.-]*)\)")
MAX_NAME = 63

# Every Tekton variable root (docs/variables.md); matched after `$(` in spec text. Tekton
# substitutes these before the shell runs, so in spec text they are an injection path; the
# linter reports them (`pipelines.linting`) and the compiler refuses them (`pipelines.tekton`).
TEKTON_VARIABLE = re.compile(
    r"\$\((?:params|context|workspaces|tasks|results|steps|step|credentials|resources"
    r"|inputs|outputs|finally|matrix)[.\[][^)]*\)?"
)
TEKTON_VARIABLE_HINT = 'use the environment variables instead, e.g. "$FERRY_BRANCH"'


def tekton_variable_message(variable: str) -> str:
    return (f"`{variable}` would be replaced by Tekton before the shell runs, which lets event "
            "data (branch names, titles) run as commands")


def retries_with_allow_failure_message(job: str) -> str:
    return (f"job `{job}` sets both `retries` and `allow_failure`, which Tekton does not allow "
            "together (onError: continue with retries)")


class CompileError(SpecError):
    """A plan Tekton cannot run as written; one problem, pinned to the spec when possible."""

    def __init__(self, *, message: str, path: str, position: Position, hint: str | None = None):
        super().__init__(
            [
                Problem(
                    severity=Severity.ERROR,
                    message=message,
                    position=position,
                    path=path,
                    hint=hint,
                )
            ]
        )
        self.path = path


class TektonVariableError(CompileError):
    """Spec text contains `$(params.…)`-style text that Tekton would substitute."""

    def __init__(self, *, path: str, variable: str, position: Position) -> None:
        self.variable = variable
        super().__init__(
            message=tekton_variable_message(variable),
            path=path,
            position=position,
            hint=TEKTON_VARIABLE_HINT,
        )


class RetriesWithAllowFailureError(CompileError):
    def __init__(self, *, job: str, position: Position) -> None:
        self.job = job
        super().__init__(
            message=retries_with_allow_failure_message(job),
            path=f"jobs.{job}",
            position=position,
        )


def refuse_untektonable(plan: Plan) -> None:
    """Raise a `CompileError` for the first job Tekton cannot run as written."""
    for job in plan.all_jobs:
        _check_job(job)


def _check_job(job: PlannedJob) -> None:
    if job.retries and job.allow_failure:
        raise RetriesWithAllowFailureError(job=job.spec_job, position=job.position)
    where = f"jobs.{job.spec_job}"

    # Every piece of spec text Tekton would substitute in, with its field path (built only for
    # the error: a variable needs `$(`, which almost no text has).
    def check(text: str, position: Position, *path: str) -> None:
        match = TEKTON_VARIABLE.search(text) if "$(" in text else None
        if match is not None:
            raise TektonVariableError(path="".join(path), variable=match.group(0),
                                      position=position)

    check(job.image, job.position, where, ".image")
    for key, value in job.env.items():
        check(value, job.position, where, ".env.", key)
    for secret in job.secrets:
        check(f"{secret.secret} {secret.key}", job.position, where, ".secrets")
    for index, step in enumerate(job.steps):
        at = f"{where}.steps[{index}]"
        check(step.script, step.position, at, ".run")
        check(step.image, step.position, at, ".image")
        for key, value in step.env.items():
            check(value, step.position, at, ".env.", key)
    for service in job.services:
        at = f"{where}.services.{service.name}"
        check(service.image, job.position, at, ".image")
        check(" ".join(service.command), job.position, at, ".command")
        for key, value in service.env.items():
            check(value, job.position, at, ".env.", key)


ON_ERROR = ("continue", "stopAndFail")
WORKSPACE_SOURCES = (
    "volumeClaimTemplate",
    "persistentVolumeClaim",
    "emptyDir",
    "configMap",
    "secret",
    "projected",
    "csi",
)


def duration_seconds(text: str) -> int | None:
    """A Go duration made of h/m/s parts, in seconds; None if it is not one."""
    match = GO_DURATION.match(text)
    if not text or match is None:
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def is_dns_label(name: object) -> bool:
    return isinstance(name, str) and len(name) <= MAX_NAME and bool(DNS_LABEL.match(name))


def violations(run: Mapping[str, Any]) -> tuple[str, ...]:
    """Every Tekton rule `run` breaks, as sentences naming the field."""
    found: list[str] = []
    if run.get("apiVersion") != "tekton.dev/v1" or run.get("kind") != "PipelineRun":
        found.append("not a tekton.dev/v1 PipelineRun")
    metadata = run.get("metadata", {})
    if not is_dns_label(metadata.get("name")):
        found.append(f"metadata.name {metadata.get('name')!r} is not a DNS-1123 label <= 63")
    found += _labels("metadata.labels", metadata.get("labels", {}))
    spec = run.get("spec", {})
    found += _params("spec.params", spec.get("params", []))
    pipeline = spec.get("pipelineSpec", {})
    found += _params("spec.pipelineSpec.params", pipeline.get("params", []))
    pipeline_params = {param["name"] for param in pipeline.get("params", [])}
    tasks = pipeline.get("tasks", [])
    finally_tasks = pipeline.get("finally", [])
    if not tasks:
        found.append("spec.pipelineSpec.tasks is empty")
    names = [task.get("name") for task in (*tasks, *finally_tasks)]
    found += [f"pipeline task name {name!r} is not a DNS-1123 label <= 63"
              for name in names if not is_dns_label(name)]
    found += [f"pipeline task name {name!r} is used twice" for name in _duplicates(names)]
    regular = {task.get("name") for task in tasks}
    declared_workspaces = {workspace["name"] for workspace in pipeline.get("workspaces", [])}
    for where, group in (("tasks", tasks), ("finally", finally_tasks)):
        for task in group:
            at = f"spec.pipelineSpec.{where}[{task.get('name')}]"
            found += _task(at, task, pipeline_params=pipeline_params)
            if where == "finally" and task.get("runAfter"):
                found.append(f"{at}.runAfter is not allowed on a finally task")
            found += [f"{at}.runAfter names unknown task {needed!r}"
                      for needed in task.get("runAfter", []) if needed not in regular]
            found += [f"{at}.workspaces binds undeclared workspace {binding.get('workspace')!r}"
                      for binding in task.get("workspaces", [])
                      if binding.get("workspace") not in declared_workspaces]
    found += _workspace_bindings(spec.get("workspaces", []), declared_workspaces)
    found += _timeouts(spec.get("timeouts", {}), tasks, finally_tasks)
    return tuple(found)


def _task(at: str, task: Mapping[str, Any], *, pipeline_params: set[str]) -> list[str]:
    found: list[str] = []
    on_error = task.get("onError")
    if on_error is not None and on_error not in ON_ERROR:
        found.append(f"{at}.onError {on_error!r} is not one of {ON_ERROR}")
    if on_error == "continue" and task.get("retries", 0) > 0:
        found.append(f"{at}: onError continue together with retries is rejected by Tekton")
    if "timeout" in task and duration_seconds(task["timeout"]) is None:
        found.append(f"{at}.timeout {task['timeout']!r} is not a Go duration")
    found += _params(f"{at}.params", task.get("params", []))
    for param in task.get("params", []):
        found += [f"{at}.params[{param['name']}] refers to undeclared pipeline param {name!r}"
                  for name in PARAM_REFERENCE.findall(str(param.get("value", "")))
                  if name not in pipeline_params]
    task_spec = task.get("taskSpec")
    if task_spec is None:
        return [*found, f"{at} has no taskSpec"]
    found += _labels(f"{at}.taskSpec.metadata.labels",
                     task_spec.get("metadata", {}).get("labels", {}))
    found += _params(f"{at}.taskSpec.params", task_spec.get("params", []))
    return found + _task_spec(at, task_spec)


def _task_spec(at: str, task_spec: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    task_params = {param["name"] for param in task_spec.get("params", [])}
    steps = task_spec.get("steps", [])
    if not steps:
        found.append(f"{at}.taskSpec.steps is empty")
    step_names = [step.get("name") for step in steps]
    found += [f"{at}: step name {name!r} is not a DNS-1123 label"
              for name in step_names if not is_dns_label(name)]
    found += [f"{at}: step name {name!r} is used twice" for name in _duplicates(step_names)]
    sidecar_names = [sidecar.get("name") for sidecar in task_spec.get("sidecars", [])]
    found += [f"{at}: sidecar name {name!r} is used twice" for name in _duplicates(sidecar_names)]
    containers = [*steps, *task_spec.get("sidecars", []), task_spec.get("stepTemplate", {})]
    for step in steps:
        if not step.get("script"):
            found.append(f"{at}: step {step.get('name')!r} has no script")
        if step.get("script") and step.get("command"):
            found.append(f"{at}: step {step.get('name')!r} has both script and command")
        if not step.get("image"):
            found.append(f"{at}: step {step.get('name')!r} has no image")
        if "$(params." in step.get("script", ""):
            found.append(f"{at}: step {step.get('name')!r} substitutes a param into its script")
    for container in containers:
        for entry in container.get("env", []):
            found += [f"{at}: env {entry['name']} refers to undeclared task param {name!r}"
                      for name in PARAM_REFERENCE.findall(str(entry.get("value", "")))
                      if name not in task_params]
    return found


def _params(at: str, params: Iterable[Mapping[str, Any]]) -> list[str]:
    names = [param.get("name") for param in params]
    found = [f"{at}: param name {name!r} does not match {PARAM_NAME.pattern}"
             for name in names if not isinstance(name, str) or not PARAM_NAME.match(name)]
    return found + [f"{at}: param {name!r} is given twice" for name in _duplicates(names)]


def _labels(at: str, labels: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if len(name) > MAX_NAME or not LABEL_KEY_NAME.match(name) or len(prefix) > 253:
            found.append(f"{at}: label key {key!r} is not valid")
        if not isinstance(value, str) or len(value) > MAX_NAME or not LABEL_VALUE.match(value):
            found.append(f"{at}: label value {value!r} of {key!r} is not valid")
    return found


def _workspace_bindings(bindings: Iterable[Mapping[str, Any]], declared: set[str]) -> list[str]:
    found: list[str] = []
    bound = set()
    for binding in bindings:
        bound.add(binding.get("name"))
        sources = [key for key in WORKSPACE_SOURCES if key in binding]
        if len(sources) != 1:
            found.append(f"spec.workspaces[{binding.get('name')}] needs exactly one volume source")
    found += [f"pipeline workspace {name!r} is not bound by spec.workspaces"
              for name in sorted(declared - bound)]
    return found


def _timeouts(
    timeouts: Mapping[str, str],
    tasks: Iterable[Mapping[str, Any]],
    finally_tasks: Iterable[Mapping[str, Any]],
) -> list[str]:
    found: list[str] = []
    seconds: dict[str, int] = {}
    for key, value in timeouts.items():
        parsed = duration_seconds(value)
        if parsed is None:
            found.append(f"spec.timeouts.{key} {value!r} is not a Go duration")
        else:
            seconds[key] = parsed
    pipeline = seconds.get("pipeline")
    if pipeline is not None and pipeline > 0:
        if seconds.get("tasks", 0) + seconds.get("finally", 0) > pipeline:
            found.append("spec.timeouts: pipeline must be >= tasks + finally")
        for section, group in (("tasks", tasks), ("finally", finally_tasks)):
            limit = seconds.get(section, pipeline)
            for task in group:
                if (duration_seconds(task.get("timeout", "")) or 0) > limit:
                    found.append(f"task {task.get('name')!r} timeout exceeds timeouts.{section}")
    elif pipeline is None and (seconds.get("tasks") == 0 or seconds.get("finally") == 0):
        found.append('spec.timeouts: tasks or finally "0" requires pipeline "0"')
    return found


def _duplicates(names: Iterable[object]) -> list[object]:
    seen: set[object] = set()
    twice: list[object] = []
    for name in names:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    return twice
