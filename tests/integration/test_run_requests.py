"""RunRequests on the real API server with two receivers (as deploy/ runs two replicas): both
see every RunRequest, one run comes of it, and the first outcome stays; each request of the
same commit is its own run; what cannot run says why in the RunRequest's status."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ci.forges.types import ForgeKind
from ci.kube.run_requests import RunRequests
from ci.settings import KubernetesSettings, Settings
from tests.cluster.control_plane import ControlPlane
from tests.cluster.resources import Kube
from tests.cluster.tekton import TEKTON_API
from tests.fakeforge import FakeForge
from webhooks.app import create_app

OWNER_NAME = "acme/widget"
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
SPEC = "jobs:\n  test:\n    image: alpine\n    steps:\n      - run: echo $FERRY_PARAMS\n"
WAIT = 60.0
RUN_REQUESTS = "/apis/ferry.dev/v1alpha1/namespaces/{namespace}/runrequests"


def _wait(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return found


@pytest.fixture
def receivers(cluster: ControlPlane, kube: Kube, namespace: str
              ) -> Iterator[tuple[FakeForge, list[TestClient]]]:
    forge = FakeForge(ForgeKind.GITHUB)
    forge.set_branch(OWNER_NAME, "main", SHA)
    forge.add_file(OWNER_NAME, SHA, ".ci.yaml", SPEC)
    kube.create({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "forge", "namespace": namespace},
                 "stringData": {"webhook-secret": "s", "token": "test-token"}})
    kube.create({"apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
                 "metadata": {"name": "widget", "namespace": namespace},
                 "spec": {"forge": "github", "url": f"https://github.com/{OWNER_NAME}",
                          "apiURL": forge.api_url, "secretRef": {"name": "forge"}}})
    clients = [
        TestClient(create_app(
            Settings(kubernetes=KubernetesSettings(kubeconfig=cluster.kubeconfig,
                                                   binding_secret_namespace=namespace)),
            forge_transport=forge.transport()))
        for _ in range(2)
    ]
    for client in clients:
        client.__enter__()
    try:
        yield forge, clients
    finally:
        for client in clients:
            client.__exit__(None, None, None)
    forge.assert_no_violations()


def _request(kube: Kube, namespace: str, **spec: Any) -> str:
    # Whoever creates it, as the admission policy (when deploy/ is installed) wants it.
    me = RunRequests(kube.api_client, request_timeout=10.0).whoami()
    created = kube.create({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "RunRequest",
        "metadata": {"generateName": "widget-manual-", "namespace": namespace},
        "spec": {"repository": "widget", "event": "manual", "requestedBy": me, **spec}})
    return str(created["metadata"]["name"])


def _status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.get(
        f"{RUN_REQUESTS.format(namespace=namespace)}/{name}").get("status") or {}
    return found


def _runs(kube: Kube, namespace: str) -> list[str]:
    listed = kube.get(f"/apis/{TEKTON_API}/namespaces/{namespace}/pipelineruns")["items"]
    return sorted(run["metadata"]["name"] for run in listed)


def test_two_receivers_make_one_run_of_a_run_request_and_keep_the_first_outcome(
    receivers: tuple[FakeForge, list[TestClient]], kube: Kube, namespace: str
) -> None:
    first = _request(kube, namespace, branch="main", params={"TARGET": "staging"})
    status = _wait(lambda: _status(kube, namespace, first), "the first outcome")
    assert status["outcome"] == "created", status
    assert status["sha"] == SHA
    assert _runs(kube, namespace) == [status["pipelineRun"]]
    # A second request of the same commit is a second run (a deliberate re-run).
    second = _request(kube, namespace, sha=SHA)
    other = _wait(lambda: _status(kube, namespace, second), "the second outcome")
    assert other["outcome"] == "created", other
    assert sorted(_runs(kube, namespace)) == sorted([status["pipelineRun"], other["pipelineRun"]])
    # Neither a branch nor a commit: the repository's default branch.
    default = _request(kube, namespace)
    third = _wait(lambda: _status(kube, namespace, default), "the third outcome")
    assert (third["outcome"], third["sha"]) == ("created", SHA), third
    # Both receivers handled each (each logs it); the outcomes stayed the first ones.
    assert _status(kube, namespace, first)["pipelineRun"] == status["pipelineRun"]
    assert _status(kube, namespace, first)["outcome"] == "created"


def test_what_cannot_run_says_why(
    receivers: tuple[FakeForge, list[TestClient]], kube: Kube, namespace: str
) -> None:
    gone = _request(kube, namespace, branch="gone")
    assert _wait(lambda: _status(kube, namespace, gone), "an outcome") | {"time": ""} == {
        "outcome": "unknown-branch", "message": f"{OWNER_NAME} has no branch 'gone'",
        "pipelineRun": "", "sha": "", "time": ""}
    skipped = _request(kube, namespace, sha="1" * 40)  # no spec at that commit
    status = _wait(lambda: _status(kube, namespace, skipped), "an outcome")
    assert status["outcome"] == "no-spec", status
    assert _runs(kube, namespace) == []
