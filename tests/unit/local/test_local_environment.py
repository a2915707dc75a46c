from __future__ import annotations

from pathlib import Path

import pytest

from ci.local.environment import (
    BASE_VARIABLES,
    STEP_PATH,
    base_environment,
    ferry_variables,
    isolated_base_environment,
    private_directories,
    step_environment,
)
from pipelines.events import Event, EventKind, PullRequest
from pipelines.planning import Plan, PlannedJob, PlannedStep
from pipelines.scripts import EVENT_PARAMS
from pipelines.tekton import compile_pipeline_run

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


def test_serve_base_is_chosen_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/ferry")
    monkeypatch.setenv("FERRY_CONFIG", "/etc/ferry/ferry.yaml")
    monkeypatch.setenv("PATH", "/opt/server/bin")
    assert isolated_base_environment() == {"PATH": STEP_PATH, "LANG": "C.UTF-8"}
    assert isolated_base_environment(path="/opt/tools/bin")["PATH"] == "/opt/tools/bin"


def test_private_directories_are_fresh_and_only_the_owners(tmp_path: Path) -> None:
    private = private_directories(tmp_path / "test-1")
    assert set(private) == {"HOME", "TMPDIR"}
    for value in private.values():
        directory = Path(value)
        assert directory.is_dir() and not any(directory.iterdir())
        assert directory.stat().st_mode & 0o077 == 0
    with pytest.raises(FileExistsError):  # never a directory an earlier attempt used
        private_directories(tmp_path / "test-1")
