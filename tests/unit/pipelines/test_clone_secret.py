"""The optional clone Secret: the token reaches only the clone step, through its env."""

from __future__ import annotations

from pipelines.events import Event, EventKind
from pipelines.linting import load_spec
from pipelines.planning import Plan, plan
from pipelines.tekton import CLONE_TOKEN_ENV, CompileOptions, compile_pipeline_run
from pipelines.tekton_rules import violations

EVENT = Event(kind=EventKind.PUSH, repository="acme/shop", repository_url="https://x/acme/shop",
              sha="a" * 40, ref="refs/heads/main", branch="main")


def _plan() -> Plan:
    spec, _ = load_spec("jobs:\n  test:\n    image: alpine\n    steps:\n      - run: make\n")
    planned = plan(spec, EVENT)
    assert isinstance(planned, Plan)
    return planned


def test_clone_step_reads_the_token_from_the_secret_and_no_other_step_does() -> None:
    run = compile_pipeline_run(_plan(), EVENT, options=CompileOptions(clone_secret="run-clone"))
    steps = run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["steps"]
    clone, *others = steps
    assert clone["env"] == [
        {"name": CLONE_TOKEN_ENV,
         "valueFrom": {"secretKeyRef": {"name": "run-clone", "key": "token"}}}
    ]
    assert "http.extraHeader" in clone["script"] and "$FERRY_CLONE_TOKEN" in clone["script"]
    assert all(CLONE_TOKEN_ENV not in str(step) for step in others)
    assert violations(run) == ()


def test_without_a_clone_secret_the_output_is_unchanged() -> None:
    plain = compile_pipeline_run(_plan(), EVENT)
    assert plain == compile_pipeline_run(_plan(), EVENT, options=CompileOptions())
    assert "env" not in plain["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["steps"][0]
