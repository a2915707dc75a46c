"""The receiver against the real API server: Repository objects and Secrets created for real,
PipelineRuns read back, the fake forge (validating every call) standing in for GitHub."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from ci.backends.tekton import TektonBackend, TektonOptions
from ci.controller.admission import group_of, limit_of
from ci.controller.runs import RunSnapshot
from ci.forges.types import ForgeKind
from ci.kube.connecting import api_client
from ci.kube.pipeline_runs import PipelineRuns
from ci.settings import KubernetesSettings, Settings
from tests.binding import TEST_KEYS
from tests.cluster.control_plane import ControlPlane
from tests.cluster.resources import Kube
from tests.cluster.tekton import TEKTON_API
from tests.contracts import CONTRACTS
from tests.fakeforge import FakeForge
from webhooks.app import create_app

CONTRACTS = CONTRACTS / "github" / "webhooks"
SECRET = "integration-hook-secret"
TOKEN = "test-token"
SPEC = """\
jobs:
  test:
    image: alpine
    secrets:
      API_KEY: deploy/key
    steps:
      - run: echo hello
"""
WAIT_SECONDS = 30.0


@dataclass
class Receiver:
    client: TestClient
    forge: FakeForge
    kube: Kube
    namespace: str
    owner_name: str  # unique per test: Repository URLs never clash across tests

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner_name}"

    def payload(self, name: str) -> dict[str, Any]:
        """A contract payload moved to this test's repository."""
        data: dict[str, Any] = json.loads((CONTRACTS / name).read_bytes())
        repository = data["repository"]
        repository |= {
            "full_name": self.owner_name,
            "html_url": self.url,
            "clone_url": f"{self.url}.git",
        }
        pull_request = data.get("pull_request")
        if pull_request:
            pull_request["base"]["repo"] = dict(repository)
            pull_request["head"]["repo"] = dict(repository)
        return data

    def post(
        self, payload: dict[str, Any], *, event: str, delivery: str = "d-1", secret: str = SECRET
    ) -> Any:
        body = json.dumps(payload).encode()
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return self.client.post(
            "/hooks",
            content=body,
            headers={
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": f"sha256={digest}",
                "Content-Type": "application/json",
            },
        )

    def runs(self) -> list[dict[str, Any]]:
        listed = self.kube.get(f"/apis/{TEKTON_API}/namespaces/{self.namespace}/pipelineruns")
        items: list[dict[str, Any]] = listed["items"]
        return items

    def add_repository(self, name: str, **spec: Any) -> dict[str, Any]:
        created = self.kube.create(
            {
                "apiVersion": "ferry.dev/v1alpha1",
                "kind": "Repository",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {
                    "forge": "github",
                    "url": self.url,
                    "apiURL": self.forge.api_url,
                    "secretRef": {"name": "forge"},
                    **spec,
                },
            }
        )
        return created


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def receiver_for(
    cluster: ControlPlane, kube: Kube, namespace: str
) -> Iterator[Callable[..., Receiver]]:
    clients: list[TestClient] = []

    def start(**repository_spec: Any) -> Receiver:
        forge = FakeForge(ForgeKind.GITHUB)
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "forge", "namespace": namespace},
                "stringData": {"webhook-secret": SECRET, "token": TOKEN},
            }
        )
        receiver = Receiver(
            client=TestClient(
                create_app(
                    Settings(kubernetes=KubernetesSettings(
                        kubeconfig=cluster.kubeconfig, binding_secret_namespace=namespace)),
                    forge_transport=forge.transport(),
                )
            ),
            forge=forge,
            kube=kube,
            namespace=namespace,
            owner_name=f"acme/{namespace}",
        )
        receiver.client.__enter__()
        clients.append(receiver.client)
        receiver.add_repository("app", **repository_spec)
        index = receiver.client.app.state.runtime.receiver.repositories  # type: ignore[attr-defined]
        _wait(lambda: index.lookup(receiver.url) is not None, "the Repository in the index")
        assert receiver.client.get("/readyz").status_code == 200
        return receiver

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def _push(receiver: Receiver, spec: str = SPEC) -> tuple[dict[str, Any], str]:
    payload = receiver.payload("push.commits.json")
    sha = payload["after"]
    receiver.forge.add_file(receiver.owner_name, sha, ".ci.yaml", spec)
    return payload, sha


def test_signed_push_creates_one_labelled_run_even_redelivered_100_times(
    receiver_for: Callable[..., Receiver],
) -> None:
    receiver = receiver_for()
    payload, sha = _push(receiver)
    first = receiver.post(payload, event="push")
    assert first.status_code == 202, first.text
    [name] = first.json()["pipelineRuns"]
    for attempt in range(100):
        # Half under the same delivery id, half as new deliveries of the same event.
        again = receiver.post(payload, event="push", delivery=f"d-{attempt % 2 + 1}")
        assert again.status_code == 202 and again.json()["pipelineRuns"] == [name]
    [run] = receiver.runs()
    labels = run["metadata"]["labels"]
    assert run["metadata"]["name"] == name
    assert run["metadata"]["namespace"] == receiver.namespace
    assert labels["ferry.dev/repository-object"] == "app"
    assert labels["ferry.dev/sha"] == sha
    assert labels["ferry.dev/branch"] == payload["ref"].removeprefix("refs/heads/")
    assert labels["app.kubernetes.io/managed-by"] == "ferry"
    # No controller runs here, and the receiver leaves every report of a run to it.
    assert receiver.forge.statuses_for(receiver.owner_name, sha) == []
    receiver.forge.assert_no_violations()


def test_bad_signature_creates_nothing(receiver_for: Callable[..., Receiver]) -> None:
    receiver = receiver_for()
    payload, _ = _push(receiver)
    response = receiver.post(payload, event="push", secret="not-the-secret")
    assert response.status_code == 401
    assert receiver.runs() == [] and receiver.forge.requests == []


def test_fork_pull_request_run_has_no_secret_refs_no_token_and_the_untrusted_label(
    receiver_for: Callable[..., Receiver],
) -> None:
    # The Repository names an account for trusted runs; a fork's run must not get it.
    receiver = receiver_for(serviceAccountName="deployer")
    payload = receiver.payload("pull_request.opened.json")
    pull_request = payload["pull_request"]
    pull_request["head"]["repo"] = dict(pull_request["head"]["repo"], full_name="mallory/fork")
    receiver.forge.add_file(receiver.owner_name, pull_request["head"]["sha"], ".ci.yaml", SPEC)
    response = receiver.post(payload, event="pull_request")
    assert response.status_code == 202, response.text
    [run] = receiver.runs()
    assert "secretKeyRef" not in json.dumps(run)
    assert run["metadata"]["labels"]["ferry.dev/pull-request"] == str(payload["number"])
    assert run["metadata"]["labels"]["ferry.dev/untrusted"] == "true"
    assert run["spec"]["taskRunTemplate"] == {
        "serviceAccountName": "default",
        "podTemplate": {"automountServiceAccountToken": False},
    }


@pytest.mark.parametrize(
    ("repository_spec", "template"),
    [
        ({"serviceAccountName": "deployer"}, {"serviceAccountName": "deployer"}),
        ({}, {"serviceAccountName": "default",
              "podTemplate": {"automountServiceAccountToken": False}}),
    ],
    ids=["named-account", "no-account"],
)
def test_trusted_run_gets_the_repository_account_only_when_it_names_one(
    receiver_for: Callable[..., Receiver], repository_spec: dict[str, Any],
    template: dict[str, Any],
) -> None:
    receiver = receiver_for(**repository_spec)
    payload, _ = _push(receiver)
    assert receiver.post(payload, event="push").status_code == 202
    [run] = receiver.runs()
    assert run["spec"]["taskRunTemplate"] == template
    assert "ferry.dev/untrusted" not in run["metadata"]["labels"]


def test_invalid_spec_fails_the_commit_with_line_and_column(
    receiver_for: Callable[..., Receiver],
) -> None:
    receiver = receiver_for()
    payload, sha = _push(receiver, spec="jobs:\n  test:\n    image: alpine\n    steps: nope\n")
    response = receiver.post(payload, event="push")
    assert response.status_code == 202
    [status] = receiver.forge.statuses_for(receiver.owner_name, sha)
    assert status["state"] == "failure"
    assert ".ci.yaml:4:" in status["description"], status
    assert receiver.runs() == []


def test_closed_pull_request_cancels_its_running_runs(
    receiver_for: Callable[..., Receiver],
) -> None:
    receiver = receiver_for()
    opened = receiver.payload("pull_request.opened.json")
    receiver.forge.add_file(
        receiver.owner_name, opened["pull_request"]["head"]["sha"], ".ci.yaml", SPEC
    )
    assert receiver.post(opened, event="pull_request").status_code == 202
    closed = copy.deepcopy(opened) | {"action": "closed"}
    response = receiver.post(closed, event="pull_request", delivery="d-closed")
    assert response.status_code == 202
    [run] = receiver.runs()
    assert response.json()["cancelled"] == [run["metadata"]["name"]]
    assert run["spec"]["status"] == "Cancelled"


def test_private_repository_runs_clone_with_a_secret_the_run_owns(
    receiver_for: Callable[..., Receiver],
) -> None:
    receiver = receiver_for(private=True)
    payload, _ = _push(receiver)
    assert receiver.post(payload, event="push").status_code == 202
    [run] = receiver.runs()
    name = run["metadata"]["name"]
    secret = receiver.kube.get(f"/api/v1/namespaces/{receiver.namespace}/secrets/{name}-clone")
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "PipelineRun",
        name,
        run["metadata"]["uid"],
    )
    assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN
    clone = run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["steps"][0]
    assert clone["env"][0]["valueFrom"]["secretKeyRef"]["name"] == f"{name}-clone"


def test_two_repositories_with_one_url_are_a_409_naming_both(
    receiver_for: Callable[..., Receiver],
) -> None:
    receiver = receiver_for()
    receiver.add_repository("app-again")
    index = receiver.client.app.state.runtime.receiver.repositories  # type: ignore[attr-defined]
    _wait(lambda: not hasattr(index.lookup(receiver.url), "uid"), "the conflict in the index")
    payload, _ = _push(receiver)
    response = receiver.post(payload, event="push")
    assert response.status_code == 409
    message = response.json()["error"]
    assert f"{receiver.namespace}/app" in message and f"{receiver.namespace}/app-again" in message
    assert receiver.runs() == []


def test_unreachable_api_server_is_503(
    receiver_for: Callable[..., Receiver], cluster: ControlPlane, tmp_path: Path
) -> None:
    receiver = receiver_for()
    # The same credentials, pointed at a port nobody listens on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{dead_port}"
    dead_kubeconfig = tmp_path / "dead-kubeconfig"
    dead_kubeconfig.write_text(yaml.safe_dump(config))
    with api_client(KubernetesSettings(kubeconfig=dead_kubeconfig,
                                        request_timeout_seconds=2.0)) as dead:
        runtime = receiver.client.app.state.runtime  # type: ignore[attr-defined]
        live = runtime.receiver.backend
        runtime.receiver.backend = TektonBackend(
            PipelineRuns(dead, request_timeout=2.0), options=TektonOptions(binding_window=120.0),
            binding_keys=lambda: TEST_KEYS,
        )
        try:
            payload, _ = _push(receiver)
            response = receiver.post(payload, event="push")
        finally:
            runtime.receiver.backend = live
    assert response.status_code == 503, response.text
    assert "Kubernetes API is unavailable" in response.json()["error"]
    assert receiver.runs() == []


def test_run_over_a_concurrency_limit_waits_pending_for_the_controller(
    receiver_for: Callable[..., Receiver],
) -> None:
    receiver = receiver_for()
    payload, _ = _push(receiver, spec="concurrency: 2\n" + SPEC)
    response = receiver.post(payload, event="push")
    assert response.status_code == 202, response.text
    [run] = receiver.runs()
    assert run["spec"]["status"] == "PipelineRunPending"
    # What the receiver writes is what the controller's admission reads.
    snapshot = RunSnapshot.of(run)
    assert group_of(snapshot)
    assert limit_of(snapshot) == 2


def _repository_status(receiver: Receiver) -> dict[str, Any]:
    found = receiver.kube.get(
        f"/apis/ferry.dev/v1alpha1/namespaces/{receiver.namespace}/repositories/app"
    )
    status: dict[str, Any] = found.get("status") or {}
    return status


def _status_written(receiver: Receiver) -> bool:
    last_events = receiver.client.app.state.runtime.receiver.last_events  # type: ignore[attr-defined]
    return not last_events.busy


def test_the_repository_status_shows_the_last_verified_delivery_only(
    receiver_for: Callable[..., Receiver],
) -> None:
    receiver = receiver_for()
    payload, sha = _push(receiver)
    response = receiver.post(payload, event="push", delivery="d-status")
    assert response.status_code == 202, response.text
    [name] = response.json()["pipelineRuns"]
    _wait(lambda: "lastEvent" in _repository_status(receiver), "status.lastEvent")
    last = _repository_status(receiver)["lastEvent"]
    assert last["deliveryID"] == "d-status" and last["sha"] == sha
    assert (last["kind"], last["ref"], last["outcome"]) == ("push", payload["ref"], "created")
    assert last["pipelineRuns"] == [name] and last["time"].endswith("Z")
    _wait(lambda: _status_written(receiver), "the status writer idle")
    before = _repository_status(receiver)
    # Someone without the secret: refused, and the status says what it said.
    forged = receiver.payload("push.commits.json") | {"after": "f" * 40}
    refused = receiver.post(forged, event="push", delivery="d-forged", secret="not-the-secret")
    assert refused.status_code == 401
    assert _status_written(receiver)  # nothing was even noted to write
    assert _repository_status(receiver) == before
    # A verified delivery that runs nothing replaces it, runs and all.
    ping = receiver.payload("ping.json")
    assert receiver.post(ping, event="ping", delivery="d-ping").status_code == 200
    _wait(lambda: _repository_status(receiver)["lastEvent"]["deliveryID"] == "d-ping",
          "the ping as last event")
    last = _repository_status(receiver)["lastEvent"]
    assert (last["kind"], last["outcome"], last["pipelineRuns"]) == ("ping", "ping", [])
    # The write shows on the API server a moment before the writer counts it.
    _wait(lambda: _status_written(receiver), "the status writer idle")
    metrics = receiver.client.get("/metrics").text
    assert 'ferry_repository_status_writes_total{result="written"} 2.0' in metrics


def _push_at(receiver: Receiver, sha: str, pushed_at: int) -> dict[str, Any]:
    """A push to main of `sha` that GitHub says happened at `pushed_at` (Unix seconds)."""
    payload = receiver.payload("push.commits.json")
    payload["after"] = payload["head_commit"]["id"] = sha
    payload["repository"]["pushed_at"] = pushed_at
    receiver.forge.add_file(receiver.owner_name, sha, ".ci.yaml", SPEC)
    return payload


def _cancelled(receiver: Receiver) -> dict[str, bool]:
    return {run["metadata"]["annotations"]["ferry.dev/sha"]:
            run["spec"].get("status") == "Cancelled" for run in receiver.runs()}


def test_a_late_old_push_runs_but_cancels_no_newer_run(
    receiver_for: Callable[..., Receiver],
) -> None:
    receiver = receiver_for(concurrency={"cancelInProgress": True})
    newer, late, newest = "b" * 40, "a" * 40, "c" * 40
    first = receiver.post(_push_at(receiver, newer, 1_700_000_200), event="push", delivery="n")
    assert first.status_code == 202, first.text

    # Pushed before `newer`, delivered after it (a forge's retry, a slow queue).
    response = receiver.post(_push_at(receiver, late, 1_700_000_100), event="push",
                             delivery="late")

    assert response.status_code == 202, response.text
    assert "cancelled" not in response.json()
    assert _cancelled(receiver) == {newer: False, late: False}
    runs = {run["metadata"]["annotations"]["ferry.dev/sha"]: run for run in receiver.runs()}
    assert runs[late]["metadata"]["annotations"]["ferry.dev/event-time"] == "2023-11-14T22:15:00Z"

    # A push after both supersedes both.
    response = receiver.post(_push_at(receiver, newest, 1_700_000_300), event="push",
                             delivery="newest")
    assert sorted(response.json()["cancelled"]) == sorted(
        run["metadata"]["name"] for run in receiver.runs()
        if run["metadata"]["annotations"]["ferry.dev/sha"] in (newer, late))
    assert _cancelled(receiver) == {newer: True, late: True, newest: False}


def test_a_late_pull_request_event_cancels_no_run_of_a_newer_one(
    receiver_for: Callable[..., Receiver],
) -> None:
    receiver = receiver_for(concurrency={"cancelInProgress": True})

    def synchronize(sha: str, updated_at: str) -> dict[str, Any]:
        payload = receiver.payload("pull_request.synchronize.json")
        payload["pull_request"]["head"]["sha"] = sha
        payload["pull_request"]["updated_at"] = updated_at
        receiver.forge.add_file(receiver.owner_name, sha, ".ci.yaml", SPEC)
        return payload

    newer, late = "e" * 40, "d" * 40
    receiver.post(synchronize(newer, "2024-05-01T10:00:05Z"), event="pull_request",
                  delivery="newer")
    response = receiver.post(synchronize(late, "2024-05-01T10:00:01Z"),
                             event="pull_request", delivery="late")
    assert response.status_code == 202, response.text
    assert "cancelled" not in response.json()
    assert _cancelled(receiver) == {newer: False, late: False}
    # In order, the newer event cancels the older one's run, as before.
    newest = "f" * 40
    response = receiver.post(synchronize(newest, "2024-05-01T10:00:09Z"),
                             event="pull_request", delivery="newest")
    assert len(response.json()["cancelled"]) == 2
    assert _cancelled(receiver) == {newer: True, late: True, newest: False}
