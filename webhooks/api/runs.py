"""What the read API says about runs: assembled from the PipelineRuns still in the cluster
and the archive's step records (a run whose PipelineRun was pruned lives on there).

Pure: objects and records in, JSON-ready dictionaries out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ci.archive.steps import StepRecord
from ci.controller.runs import JobState, RunSnapshot, TaskRunSnapshot, observe, seconds_between
from ci.forges.statuses import Conclusion
from ci.kube import labels


def step_names(obj: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each pipeline task's step names, as compiled (known before any TaskRun exists)."""
    spec = (obj.get("spec") or {}).get("pipelineSpec") or {}
    names: dict[str, list[str]] = {}
    for task in [*(spec.get("tasks") or ()), *(spec.get("finally") or ())]:
        steps = (task.get("taskSpec") or {}).get("steps") or ()
        names[str(task.get("name", ""))] = [str(step.get("name", "")) for step in steps]
    return names


def task_facts(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What the compiled spec says of each pipeline task besides its steps: the tasks it
    runs after (`needs`), whether it is a `finally` job, the retries it is allowed."""
    spec = (obj.get("spec") or {}).get("pipelineSpec") or {}
    facts: dict[str, dict[str, Any]] = {}
    for section in ("tasks", "finally"):
        for task in spec.get(section) or ():
            facts[str(task.get("name", ""))] = {
                "needs": [str(name) for name in task.get("runAfter") or ()],
                "finally": section == "finally",
                "retries": int(task.get("retries") or 0),
            }
    return facts


def _param(obj: Mapping[str, Any], name: str) -> str:
    for param in (obj.get("spec") or {}).get("params") or ():
        if param.get("name") == name:
            return str(param.get("value") or "")
    return ""


def _step_state(exit_code: int | None, reason: str, *, started: bool) -> str:
    if exit_code is None:
        return Conclusion.RUNNING.value if started else Conclusion.QUEUED.value
    if reason == "Skipped":
        return Conclusion.SKIPPED.value
    return Conclusion.SUCCESS.value if exit_code == 0 else Conclusion.FAILURE.value


def _record_view(record: StepRecord | None) -> dict[str, Any]:
    if record is None:
        return {"archived": False}
    return {
        "archived": record.lost is None,
        "lost": record.lost,
        "exitCode": record.details.exit_code,
        "startedAt": record.details.started_at,
        "finishedAt": record.details.finished_at,
        "size": record.size,
        "truncated": record.truncated,
    }


def _summary(run: RunSnapshot, conclusion: Conclusion, repository: str) -> dict[str, Any]:
    notes = run.annotations
    return {
        "namespace": run.namespace,
        "repository": repository,
        "name": run.name,
        "state": conclusion.value,
        "event": notes.get(f"{labels.PREFIX}event", ""),
        "branch": notes.get(labels.BRANCH, ""),
        "sha": notes.get(labels.SHA, ""),
        "pullRequest": notes.get(labels.PULL_REQUEST, ""),
        "forgeRepository": run.repository or "",
        "repositoryUrl": run.repository_url or "",
        "createdAt": run.created,
        "startedAt": run.start_time,
        "finishedAt": run.completion_time,
        "durationSeconds": seconds_between(run.start_time, run.completion_time),
        "inCluster": True,
    }


def cluster_run(obj: Mapping[str, Any], task_runs: Iterable[Mapping[str, Any]], *,
                repository: str, records: Iterable[StepRecord] = (),
                with_jobs: bool = True) -> dict[str, Any]:
    run = RunSnapshot.of(obj)
    task_runs = list(task_runs)
    snapshots = [TaskRunSnapshot.of(task_run) for task_run in task_runs]
    state = observe(run, snapshots)
    view = _summary(run, state.conclusion, repository)
    view["author"] = _param(obj, "author")
    view["pullRequestTitle"] = _param(obj, "pull-request-title")
    if with_jobs:
        by_step = {(record.key.job, record.key.step): record for record in records}
        compiled = step_names(obj)
        facts = task_facts(obj)
        attempts = {str(((tr.get("metadata") or {}).get("labels") or {}).get(
            labels.TEKTON_PIPELINE_TASK, "")): len((tr.get("status") or {}).get(
                "retriesStatus") or ()) for tr in task_runs}
        tasks = {task.name: task for task in run.tasks}
        view["jobs"] = [
            {**_job_view(job, compiled.get(job.pipeline_task, []), by_step),
             "variant": tasks[job.pipeline_task].variant if job.pipeline_task in tasks else "",
             "retried": attempts.get(job.pipeline_task, 0),
             **facts.get(job.pipeline_task, {})}
            for job in state.jobs]
    return view


def _job_view(job: JobState, compiled: list[str],
              records: Mapping[tuple[str, str], StepRecord]) -> dict[str, Any]:
    task_run = job.task_run
    steps: list[dict[str, Any]] = []
    seen = {step.name: step for step in task_run.steps} if task_run is not None else {}
    for name in compiled or list(seen):
        step = seen.get(name)
        record = records.get((job.pipeline_task, name))
        state = _step_state(step.exit_code if step else None,
                            step.termination_reason if step else "", started=step is not None)
        if step is None and job.conclusion.final:
            state = (Conclusion.SKIPPED.value if record is None
                     else _step_state(record.details.exit_code, "", started=True))
        steps.append({"name": name, "state": state,
                      "exitCode": step.exit_code if step else None, **_record_view(record)})
    return {
        "name": job.pipeline_task,
        "job": job.name,
        "state": job.conclusion.value,
        "durationSeconds": job.duration,
        "steps": steps,
    }


def archived_run(namespace: str, repository: str, run: str, records: list[StepRecord], *,
                 with_jobs: bool = True) -> dict[str, Any]:
    """A run known only from its records (its PipelineRun was pruned)."""
    codes = [record.details.exit_code for record in records]
    if any(record.lost for record in records) and not any(codes):
        state = Conclusion.ERROR
    elif any(code not in (None, 0) for code in codes):
        state = Conclusion.FAILURE
    else:
        state = Conclusion.SUCCESS
    started = min((r.details.started_at for r in records if r.details.started_at), default=None)
    finished = max((r.details.finished_at for r in records if r.details.finished_at),
                   default=None)
    view: dict[str, Any] = {
        "namespace": namespace, "repository": repository, "name": run, "state": state.value,
        "event": "", "branch": "", "pullRequest": "", "author": "", "pullRequestTitle": "",
        "sha": next((record.details.sha for record in records if record.details.sha), ""),
        "forgeRepository": next((record.details.forge_repository for record in records
                                 if record.details.forge_repository), ""),
        "repositoryUrl": "",
        "createdAt": started, "startedAt": started, "finishedAt": finished,
        "durationSeconds": seconds_between(started, finished), "inCluster": False,
    }
    if with_jobs:
        jobs: dict[str, list[StepRecord]] = {}
        for record in records:
            jobs.setdefault(record.key.job, []).append(record)
        view["jobs"] = [
            {
                "name": job,
                "job": found[0].details.job or job,
                "state": (Conclusion.FAILURE if any(r.details.exit_code not in (None, 0)
                                                    for r in found) else Conclusion.SUCCESS
                          ).value,
                "durationSeconds": None,
                "variant": found[0].details.variant,
                "needs": [], "finally": False, "retries": 0, "retried": 0,
                "steps": [{"name": r.key.step,
                           "state": _step_state(r.details.exit_code, "", started=True),
                           **_record_view(r)} for r in found],
            }
            for job, found in jobs.items()
        ]
    return view
