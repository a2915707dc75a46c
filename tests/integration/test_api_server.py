"""The compiler's output against a real kube-apiserver with Tekton's CRDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.resources import Kube, object_path
from tests.integration.goldens import GOLDEN_FILES, MINIMUM_GOLDENS, golden_params, load_golden


def test_there_are_enough_goldens_to_mean_something() -> None:
    assert len(GOLDEN_FILES) >= MINIMUM_GOLDENS, [p.name for p in GOLDEN_FILES]


@pytest.mark.parametrize("path", golden_params())
def test_golden_pipeline_run_is_accepted_as_written(path: Path, kube: Kube, namespace: str) -> None:
    run = load_golden(path, namespace)
    # The create answer is the object as stored, before any controller touched it: the
    # session's Tekton controller may already be running (tests/e2e starts it) and would
    # default fields (`taskRunTemplate: {}`) between the create and a later read.
    read_back = created = kube.create(run)
    # The CRD schema prunes fields it does not know instead of refusing them: a misspelt
    # field would vanish silently. So what was stored must be exactly what we sent.
    assert read_back["spec"] == run["spec"]
    assert read_back["metadata"]["labels"] == run["metadata"].get("labels", {})
    assert read_back["metadata"]["annotations"] == run["metadata"].get("annotations", {})
    kube.delete(object_path(created))
    assert not kube.exists(object_path(created))


def test_namespace_fixture_gives_a_default_service_account(kube: Kube, namespace: str) -> None:
    account = kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
    assert account["metadata"]["namespace"] == namespace
