"""What the watches keep of each run: the snapshot of a trimmed object is the snapshot of the
whole object, and the trimmed object is a fraction of it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci.controller.runs import RunSnapshot, TaskRunSnapshot, trim_run, trim_task_run
from ci.kube import labels
from tests.unit.controller.builders import pipeline_run, task_run

GOLDEN = sorted((Path(__file__).resolve().parents[2] / "golden").glob("*.pipelinerun.yaml"))
MANAGED_FIELDS = [{"manager": "ferry-controller", "operation": "Update", "fieldsType": "FieldsV1",
                   "fieldsV1": {"f:metadata": {"f:annotations": {"f:ferry.dev/reported": {}}}}}]


def _as_served(run: dict[str, Any]) -> dict[str, Any]:
    """A golden run as the API server sends it back: with metadata it adds, and a status."""
    served = copy.deepcopy(run)
    served["metadata"].update(uid="5d0e-uid", resourceVersion="812", generation=1,
                              creationTimestamp="2026-05-01T10:00:00Z",
                              managedFields=MANAGED_FIELDS)
    served["metadata"].setdefault("annotations", {}).update({
        labels.BINDING: "v1.0123456789abcdef.1777629600.mac",
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(run),
    })
    served["metadata"]["labels"]["tekton.dev/pipeline"] = served["metadata"]["name"]
    first = (served["spec"]["pipelineSpec"]["tasks"] or [{}])[0].get("name", "")
    served["status"] = {
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed",
                        "message": "Tasks Completed: 1 (Failed: 1)",
                        "lastTransitionTime": "2026-05-01T10:01:00Z"}],
        "startTime": "2026-05-01T10:00:01Z", "completionTime": "2026-05-01T10:01:00Z",
        "skippedTasks": [{"name": first, "reason": "When Expressions evaluated to false"}],
        "childReferences": [{"name": f"{served['metadata']['name']}-{first}",
                             "pipelineTaskName": first}],
    }
    return served


@pytest.mark.parametrize("path", GOLDEN, ids=[path.name.split(".")[0] for path in GOLDEN])
def test_a_trimmed_golden_run_makes_the_same_snapshot(path: Path) -> None:
    run = _as_served(yaml.safe_load(path.read_text()))

    trimmed = trim_run(run)

    assert RunSnapshot.of(trimmed) == RunSnapshot.of(run)
    # The compiled steps' scripts, images and volumes are gone, and the API server's fields.
    assert len(json.dumps(trimmed["spec"])) < len(json.dumps(run["spec"])) / 3
    assert "managedFields" not in trimmed["metadata"]
    assert "childReferences" not in trimmed["status"]


def test_matrix_values_and_secret_references_survive_trimming() -> None:
    run = _as_served(yaml.safe_load((Path(GOLDEN[0]).parent / "matrix.pipelinerun.yaml")
                                    .read_text()))
    secrets = _as_served(yaml.safe_load((Path(GOLDEN[0]).parent / "secrets.pipelinerun.yaml")
                                        .read_text()))

    assert any(task.variant for task in RunSnapshot.of(trim_run(run)).tasks)
    assert RunSnapshot.of(trim_run(secrets)).secret_refs


def test_a_run_keeps_only_the_labels_and_annotations_the_controller_reads() -> None:
    snapshot = RunSnapshot.of(_as_served(pipeline_run()))

    assert "kubectl.kubernetes.io/last-applied-configuration" not in snapshot.annotations
    assert labels.BINDING in snapshot.annotations
    assert snapshot.labels[labels.MANAGED_BY] == labels.MANAGED_BY_FERRY
    assert snapshot.labels["tekton.dev/pipeline"] == "widget-abc"


def test_a_pending_run_without_status_trims_to_the_same_snapshot() -> None:
    run = pipeline_run(spec_status=labels.PENDING, start=None)

    assert RunSnapshot.of(trim_run(run)) == RunSnapshot.of(run)


def test_a_trimmed_task_run_makes_the_same_snapshot() -> None:
    obj = task_run(exit_codes=(0, 2), completion="2024-05-01T10:02:00Z")
    obj["metadata"]["managedFields"] = MANAGED_FIELDS
    obj.setdefault("status", {})["taskSpec"] = {"steps": [{"name": "run", "script": "x" * 5000}]}

    trimmed = trim_task_run(obj)

    assert TaskRunSnapshot.of(trimmed) == TaskRunSnapshot.of(obj)
    assert "taskSpec" not in trimmed["status"]
