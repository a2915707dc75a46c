"""What the watches keep of each run: a snapshot with the fields the controller reads, a
fraction of the memory of the object as the API server sent it, holding nothing of it."""

from __future__ import annotations

import copy
import enum
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from ci.controller.runs import RunSnapshot, TaskRunSnapshot
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


def _deep_size(root: object) -> int:
    """Bytes of `root` and of everything it reaches (each object once; classes, functions
    and enum members are shared by every run and left out). Counted with `sys.getsizeof`
    rather than tracemalloc: tracemalloc counts what every thread allocates meanwhile, and the
    suite's cluster fixtures have threads of their own."""
    seen: set[int] = set()
    total = 0
    pending = [root]
    while pending:
        obj = pending.pop()
        if id(obj) in seen or obj is None or isinstance(obj, type | enum.Enum | bool) \
                or callable(obj):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict | MappingProxyType):
            pending.extend(obj.keys())
            pending.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            pending.extend(obj)
        elif not isinstance(obj, str | bytes | int | float):
            for cls in type(obj).__mro__:
                pending.extend(getattr(obj, name) for name in getattr(cls, "__slots__", ())
                               if hasattr(obj, name))
            pending.extend(getattr(obj, "__dict__", {}).values())
    return total


def _kept_share(text: str, snapshot_of: Callable[[dict[str, Any]], object]) -> float:
    """The memory the snapshot of the object in JSON `text` keeps, as a share of what the
    parsed object takes. A snapshot holding any part of the object (a whole sub-dict, say)
    counts that part in full."""
    obj = json.loads(text)
    parsed = _deep_size(obj)
    snapshot = snapshot_of(obj)
    assert snapshot is not None
    return _deep_size(snapshot) / parsed


@pytest.mark.parametrize("path", GOLDEN, ids=[path.name.split(".")[0] for path in GOLDEN])
def test_a_golden_runs_snapshot_keeps_a_fraction_of_the_object(path: Path) -> None:
    run = _as_served(yaml.safe_load(path.read_text()))

    snapshot = RunSnapshot.of(run)

    assert snapshot.condition is not None and snapshot.condition.reason == "Failed"
    assert [task.name for task in snapshot.tasks] == [
        task["name"] for part in ("tasks", "finally")
        for task in run["spec"]["pipelineSpec"].get(part) or ()]
    # The compiled steps' scripts, images and volumes, and the API server's fields, are not
    # kept: the watches hand the store snapshots made straight from the parsed objects.
    assert _kept_share(json.dumps(run), RunSnapshot.of) < 0.25


def test_matrix_values_and_secret_references_are_read() -> None:
    run = _as_served(yaml.safe_load((Path(GOLDEN[0]).parent / "matrix.pipelinerun.yaml")
                                    .read_text()))
    secrets = _as_served(yaml.safe_load((Path(GOLDEN[0]).parent / "secrets.pipelinerun.yaml")
                                        .read_text()))

    assert any(task.variant for task in RunSnapshot.of(run).tasks)
    assert RunSnapshot.of(secrets).secret_refs


def test_a_run_keeps_only_the_labels_and_annotations_the_controller_reads() -> None:
    snapshot = RunSnapshot.of(_as_served(pipeline_run()))

    assert "kubectl.kubernetes.io/last-applied-configuration" not in snapshot.annotations
    assert labels.BINDING in snapshot.annotations
    assert snapshot.labels[labels.MANAGED_BY] == labels.MANAGED_BY_FERRY
    assert snapshot.labels["tekton.dev/pipeline"] == "widget-abc"


def test_a_task_runs_snapshot_keeps_its_steps_not_its_spec() -> None:
    obj = task_run(condition=("False", "Failed"), exit_codes=(0, 2),
                   completion="2024-05-01T10:02:00Z")
    obj["metadata"]["managedFields"] = MANAGED_FIELDS
    obj["status"]["taskSpec"] = {"steps": [{"name": "run", "script": "x" * 5000}]}

    snapshot = TaskRunSnapshot.of(obj)

    assert snapshot.failing_step is not None and snapshot.failing_step.exit_code == 2
    assert snapshot.pod_name == "widget-abc-build-pod"
    assert _kept_share(json.dumps(obj), TaskRunSnapshot.of) < 0.25
