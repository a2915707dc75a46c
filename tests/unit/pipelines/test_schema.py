"""The JSON Schema editors use agrees with the linter on valid and invalid specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipelines.linting import JOB_KEYS, STEP_KEYS, TOP_KEYS, WHEN_KEYS
from pipelines.schema import spec_json_schema

ROOT = Path(__file__).parents[3]
SPECS = Path(__file__).parent / "specs"
VALID = [
    *sorted((SPECS / "valid").glob("*.yaml")),
    ROOT / "examples" / "hello" / ".ci.yaml",
    *sorted((ROOT / "tests" / "golden").glob("*.ci.yaml")),
]


def validator() -> jsonschema.Draft7Validator:
    schema = spec_json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(document: Any) -> list[str]:
    return [error.message for error in validator().iter_errors(document)]


@pytest.mark.parametrize("path", VALID, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_valid_spec_is_accepted(path: Path) -> None:
    assert errors(yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"jobs": {"test": {"step": ["x"]}}}, id="unknown-key"),
        pytest.param({"jobs": {"Test_Job": {"steps": ["x"]}}}, id="bad-job-name"),
        pytest.param({"steps": ["x"], "jobs": {"a": {"steps": ["x"]}}}, id="steps-and-jobs"),
        pytest.param({"image": "python:3.12", "jobs": {"a": {"steps": ["x"]}}},
                     id="image-without-steps"),
        pytest.param({"steps": [{"name": "no run"}]}, id="step-without-run"),
        pytest.param({"steps": ["x"], "timeout": "2 days"}, id="bad-duration"),
        pytest.param({"steps": ["x"], "when": {"event": "pull-request"}}, id="bad-event"),
        pytest.param({"jobs": {"a": {"steps": ["x"], "retries": 11}}}, id="too-many-retries"),
        pytest.param({"finally": {"n": {"steps": ["x"], "needs": "a"}},
                      "jobs": {"a": {"steps": ["x"]}}}, id="finally-needs"),
        pytest.param({"steps": ["x"], "env": {"9X": "y"}}, id="bad-env-name"),
        pytest.param({}, id="empty"),
    ],
)
def test_invalid_specs_are_rejected(document: dict[str, Any]) -> None:
    assert errors(document)


def _properties(schema: Any) -> set[str]:
    return set(schema["properties"])


def test_the_schema_knows_exactly_the_linters_keys() -> None:
    schema = spec_json_schema()
    properties: Any = schema["properties"]
    job = properties["jobs"]["additionalProperties"]
    step = job["properties"]["steps"]["items"]["anyOf"][1]
    assert _properties(schema) == set(TOP_KEYS)
    assert _properties(job) == set(JOB_KEYS)
    assert _properties(step) == set(STEP_KEYS)
    assert _properties(properties["when"]) == set(WHEN_KEYS)


def test_every_key_is_described_for_the_editor() -> None:
    schema: Any = spec_json_schema()
    job = schema["properties"]["jobs"]["additionalProperties"]
    for properties in (schema["properties"], job["properties"]):
        undescribed = [key for key, value in properties.items() if "description" not in value]
        assert undescribed == []
