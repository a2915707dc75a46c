from __future__ import annotations

from ci.local.environment import (
    BASE_VARIABLES,
    base_environment,
    ferry_variables,
    step_environment,
)
from pipelines.events import Event, EventKind, PullRequest
from pipelines.planning import Plan, PlannedJob, PlannedStep
from pipelines.tekton import EVENT_PARAMS, compile_pipeline_run

EVENT = Event(
    kind=EventKind.PULL_REQUEST,
    repository="team/app",
    repository_url="https://forge.example/team/app.git",
    sha="0123456789abcdef0123456789abcdef01234567",
    ref="refs/pull/7/head",
    branch="main",
    pull_request=PullRequest(
        number=7, title="Fix $(rm -rf /)", head_branch="fix", base_branch="main", author="dev"
    ),
    author="dev",
)
STEP = PlannedStep(name="run-1", script="true", image="alpine", env={"LEVEL": "step"})
JOB = PlannedJob(
    name="test",
    spec_job="test",
    matrix={},
    image="alpine",
    steps=(STEP,),
    env={"LEVEL": "job", "FERRY_BRANCH": "spoofed", "TOKEN": "plain", "ONLY_JOB": "j"},
)


def test_event_variables_are_the_ones_the_tekton_compiler_passes() -> None:
    run = compile_pipeline_run(Plan(jobs=(JOB,)), EVENT)
    params = {param["name"]: param["value"] for param in run["spec"]["params"]}
    variables = ferry_variables(EVENT, job="test", run_name="local")
    assert {env: variables[env] for _, env, _ in EVENT_PARAMS} == {
        env: params[param] for param, env, _ in EVENT_PARAMS
    }
    step_template = run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["stepTemplate"]
    compiled_names = {entry["name"] for entry in step_template["env"]}
    assert compiled_names == set(variables)
    assert variables["FERRY_PULL_REQUEST_TITLE"] == "Fix $(rm -rf /)"


def test_precedence_base_then_plan_then_ferry_then_secrets() -> None:
    environment = step_environment(
        job=JOB,
        step=STEP,
        ferry=ferry_variables(EVENT, job="test", run_name="local"),
        secrets={"TOKEN": "secret"},
        base={"PATH": "/bin", "LEVEL": "base"},
    )
    assert environment["LEVEL"] == "step"
    assert environment["ONLY_JOB"] == "j"
    assert environment["FERRY_BRANCH"] == "main"
    assert environment["TOKEN"] == "secret"
    assert environment["PATH"] == "/bin"


def test_the_base_keeps_only_the_listed_variables() -> None:
    base = base_environment({"HOME": "/home/dev", "AWS_SECRET_ACCESS_KEY": "x", "LANG": "C"})
    assert base == {"HOME": "/home/dev", "LANG": "C", "PATH": "/usr/local/bin:/usr/bin:/bin"}
    assert "PATH" in BASE_VARIABLES
