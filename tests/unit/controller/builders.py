"""PipelineRun and TaskRun objects as Tekton writes them, for unit tests."""

from __future__ import annotations

from typing import Any

from ci.kube import labels


def pipeline_run(
    *,
    name: str = "widget-abc",
    namespace: str = "team",
    jobs: tuple[str, ...] = ("build", "test"),
    condition: tuple[str, str] | None = None,
    reported: str | None = None,
    spec_status: str | None = None,
    start: str | None = "2024-05-01T10:00:00Z",
    completion: str | None = None,
    skipped: tuple[str, ...] = (),
    secret: tuple[str, str] | None = None,
) -> dict[str, Any]:
    annotations = {
        labels.REPOSITORY: "acme/widget",
        labels.REPOSITORY_URL: "https://github.com/acme/widget",
        labels.SHA: "3f786850e387550fdab836ed7e6dc881de23001b",
    }
    if reported is not None:
        annotations[labels.REPORTED] = reported
    step: dict[str, Any] = {"name": "run", "image": "alpine", "script": "true"}
    if secret is not None:
        step["env"] = [
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": secret[0], "key": secret[1]}}}
        ]
    status: dict[str, Any] = {}
    if condition is not None:
        status["conditions"] = [
            {"type": "Succeeded", "status": condition[0], "reason": condition[1], "message": ""}
        ]
    if start:
        status["startTime"] = start
    if completion:
        status["completionTime"] = completion
    if skipped:
        status["skippedTasks"] = [{"name": task, "reason": "When Expressions evaluated to false"}
                                  for task in skipped]
    spec: dict[str, Any] = {
        "pipelineSpec": {
            "tasks": [
                {
                    "name": job,
                    "taskSpec": {
                        "metadata": {"labels": {labels.JOB: job, labels.SPEC_JOB: job}},
                        "steps": [step],
                    },
                }
                for job in jobs
            ]
        }
    }
    if spec_status:
        spec["status"] = spec_status
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "creationTimestamp": "2024-05-01T09:59:59Z",
            "labels": {labels.MANAGED_BY: labels.MANAGED_BY_FERRY},
            "annotations": annotations,
        },
        "spec": spec,
        "status": status,
    }


def task_run(
    *,
    run: str = "widget-abc",
    task: str = "build",
    condition: tuple[str, str] | None = ("Unknown", "Running"),
    exit_codes: tuple[int, ...] = (),
    start: str = "2024-05-01T10:00:01Z",
    completion: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"podName": f"{run}-{task}-pod", "startTime": start}
    if condition is not None:
        status["conditions"] = [
            {"type": "Succeeded", "status": condition[0], "reason": condition[1],
             "message": f"{task}: {condition[1]}"}
        ]
    if completion:
        status["completionTime"] = completion
    status["steps"] = [
        {"name": f"s{index}", "container": f"step-s{index}",
         "terminated": {"exitCode": code, "reason": "Error" if code else "Completed"},
         "terminationReason": "Skipped" if index > 0 and exit_codes[index - 1] else ""}
        for index, code in enumerate(exit_codes)
    ]
    return {
        "metadata": {
            "name": f"{run}-{task}",
            "namespace": "team",
            "labels": {labels.TEKTON_PIPELINE_RUN: run, labels.TEKTON_PIPELINE_TASK: task},
        },
        "status": status,
    }
