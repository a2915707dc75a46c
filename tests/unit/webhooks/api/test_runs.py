"""Views of runs: a pruned run from its records, a run in the cluster with its steps."""

from __future__ import annotations

from ci.archive.layout import StepKey
from ci.archive.steps import StepDetails, StepRecord
from webhooks.api.runs import archived_run, cluster_run


def _record(step: str, code: int | None, *, lost: str | None = None) -> StepRecord:
    return StepRecord(key=StepKey(namespace="team", repository="app", run="r1", job="build",
                                  step=step),
                      details=StepDetails(job="build", exit_code=code,
                                          started_at="2026-01-01T00:00:00Z",
                                          finished_at="2026-01-01T00:02:05Z"),
                      size=10, stored=10, truncated=False, lost=lost, archived_at="x")


def test_a_pruned_run_is_told_from_its_records() -> None:
    view = archived_run("team", "app", "r1", [_record("clone", 0), _record("test", 2)])
    assert (view["state"], view["durationSeconds"], view["inCluster"]) == ("failure", 125, False)
    [job] = view["jobs"]
    assert [(s["name"], s["state"], s["archived"]) for s in job["steps"]] == [
        ("clone", "success", True), ("test", "failure", True)]
    lost = archived_run("team", "app", "r1", [_record("clone", None, lost="pod gone")])
    assert lost["state"] == "error" and lost["jobs"][0]["steps"][0]["lost"] == "pod gone"


def test_a_run_in_the_cluster_shows_every_compiled_step_and_its_record() -> None:
    run = {
        "metadata": {"namespace": "team", "name": "r1", "uid": "u",
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "annotations": {"ferry.dev/branch": "main", "ferry.dev/sha": "abc",
                                     "ferry.dev/event": "push"}},
        "spec": {"pipelineSpec": {"tasks": [{"name": "build", "taskSpec": {
            "metadata": {"labels": {"ferry.dev/job": "build"}},
            "steps": [{"name": "clone"}, {"name": "test"}]}}]}},
        "status": {"conditions": [{"type": "Succeeded", "status": "Unknown",
                                   "reason": "Running"}]},
    }
    task_run = {
        "metadata": {"namespace": "team", "name": "r1-build",
                     "labels": {"tekton.dev/pipelineRun": "r1",
                                "tekton.dev/pipelineTask": "build"}},
        "status": {"podName": "r1-build-pod", "steps": [
            {"name": "clone", "container": "step-clone", "terminated": {"exitCode": 0}},
            {"name": "test", "container": "step-test", "running": {}}],
            "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]},
    }
    view = cluster_run(run, [task_run], repository="app", records=[_record("clone", 0)])
    assert (view["state"], view["branch"], view["sha"], view["event"]) == (
        "running", "main", "abc", "push")
    [job] = view["jobs"]
    assert [(s["name"], s["state"], s["archived"]) for s in job["steps"]] == [
        ("clone", "success", True), ("test", "running", False)]
