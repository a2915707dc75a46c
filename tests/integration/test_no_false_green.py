"""No event turns a red commit green: the receiver and the controller together, for real.

The receiver (the app, in this process) creates runs on the real API server; the controller
(a process) reports them to the fake GitHub served on 127.0.0.1, which both talk to. A run's
failure is written through the status subresource as Tekton writes it. Then an event that
starts nothing at the same commit (a pull request `when` filters out, a tag, a second
branch, a redelivered skip) must leave the commit's `ferry` check red.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from ci.forges.types import ForgeKind
from ci.settings import KubernetesSettings, Settings
from tests.cluster.control_plane import ControlPlane
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube
from tests.cluster.tekton import TEKTON_API
from tests.contracts import CONTRACTS
from tests.fakeforge import FakeForge
from tests.fakeforge.serving import serve
from tests.integration.controller_fixtures import (
    TOKEN,
    ControllerProcess,
    controller,
    set_condition,
    wait_for,
)
from webhooks.app import create_app

__all__ = ["controller"]  # a fixture, imported to be found

PAYLOADS = CONTRACTS / "github" / "webhooks"
SECRET = "no-false-green-secret"
APP_ID, INSTALLATION_ID = 4242, 77
# The push's branch runs; pull requests, tags and other branches are filtered out.
SPEC = """\
when:
  event: push
  branch: main
jobs:
  test:
    image: alpine
    steps:
      - run: "false"
"""


@dataclass
class Setup:
    client: TestClient
    forge: FakeForge
    kube: Kube
    namespace: str
    app_mode: bool
    deliveries: int = 0

    @property
    def owner_name(self) -> str:
        return f"acme/{self.namespace}"

    def payload(self, name: str, *, sha: str) -> dict[str, Any]:
        """A published example moved to this test's repository and commit."""
        data: dict[str, Any] = json.loads((PAYLOADS / name).read_bytes())
        url = f"https://github.com/{self.owner_name}"
        data["repository"] |= {"full_name": self.owner_name, "html_url": url,
                               "clone_url": f"{url}.git"}
        if "pull_request" in data:
            for side in ("base", "head"):
                data["pull_request"][side]["repo"] = dict(data["repository"])
            data["pull_request"]["head"]["sha"] = sha
        else:
            data["after"] = sha
            if data.get("head_commit"):
                data["head_commit"]["id"] = sha
        return data

    def post(self, payload: dict[str, Any], *, event: str, delivery: str | None = None) -> Any:
        self.deliveries += 1
        body = json.dumps(payload).encode()
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = self.client.post("/hooks", content=body, headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or f"delivery-{self.deliveries}",
            "X-Hub-Signature-256": f"sha256={digest}",
            "Content-Type": "application/json",
        })
        assert response.status_code in (200, 202), response.text
        return response.json()

    def shown(self, sha: str, context: str = "ferry") -> list[str]:
        """What the forge showed under `context` on `sha`, oldest first: commit status
        states, or check run conclusions (status while not completed)."""
        if self.app_mode:
            return [run.get("conclusion") or run["status"]
                    for _, run in sorted(self.forge.check_runs.items())
                    if run.get("head_sha") == sha and run.get("name") == context]
        return [status["state"] for status in self.forge.statuses_for(self.owner_name, sha)
                if status["context"] == context]

    def verdict(self, sha: str) -> str | None:
        """What branch protection reads: the newest status, or the newest check run."""
        shown = self.shown(sha)
        return shown[-1] if shown else None

    def push_that_fails(self, controller: ControllerProcess, *, sha: str) -> None:
        """A push of `sha` to main that runs, and fails, reported by the controller."""
        answer = self.post(self.payload("push.commits.json", sha=sha), event="push")
        [name] = answer["pipelineRuns"]
        wait_for(lambda: self.shown(sha), what="the run reported", controller=controller)
        set_condition(self.kube, self.namespace, name, "False", "Failed")
        wait_for(lambda: self.verdict(sha) == "failure", what="the failure reported",
                 controller=controller)


@pytest.fixture(params=["token", "app"])
def setup(request: pytest.FixtureRequest, cluster: ControlPlane, kube: Kube, namespace: str,
          controller: ControllerProcess, kubelet: SimulatedKubelet
          ) -> Iterator[Callable[[], Setup]]:
    app_mode = request.param == "app"
    # The steps really run: `false` fails by itself, whether the kubelet or the test's
    # written condition gets there first (a kubelet that only exits 0 raced the test).
    kubelet.run_scripts_in(namespace)
    forge = FakeForge(ForgeKind.GITHUB, tokens={TOKEN})
    clients: list[TestClient] = []
    with serve(forge) as api_url:

        def start(**repository_spec: Any) -> Setup:
            data = {"webhook-secret": SECRET}
            spec: dict[str, Any] = dict(repository_spec)
            if app_mode:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                data["private-key"] = key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()).decode()
                forge.app_id = str(APP_ID)
                forge.app_public_key = key.public_key().public_bytes(
                    serialization.Encoding.PEM,
                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()
                spec["githubApp"] = {"appID": APP_ID, "installationID": INSTALLATION_ID}
            else:
                data["token"] = TOKEN
            kube.create({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "forge", "namespace": namespace},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            })
            kube.create({
                "apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
                "metadata": {"name": "app", "namespace": namespace},
                "spec": {"forge": "github", "url": f"https://github.com/acme/{namespace}",
                         "apiURL": api_url, "secretRef": {"name": "forge"}, **spec},
            })
            client = TestClient(create_app(
                Settings(kubernetes=KubernetesSettings(
                    kubeconfig=cluster.kubeconfig, binding_secret_namespace=namespace))))
            client.__enter__()
            clients.append(client)
            wait_for(lambda: client.get("/readyz").status_code == 200, what="receiver ready")
            controller.start()
            controller.wait_ready()
            # The runs present at start are listed, so the watch that follows sees ours.
            log = controller.log_path
            wait_for(lambda: '"resumed"' in log.read_text(errors="replace"),
                     what="the controller resumed", controller=controller)
            return Setup(client=client, forge=forge, kube=kube, namespace=namespace,
                         app_mode=app_mode)

        yield start
        for client in clients:
            client.__exit__(None, None, None)
    forge.assert_no_violations()


def _with_spec(setup: Setup, sha: str) -> str:
    setup.forge.add_file(setup.owner_name, sha, ".ci.yaml", SPEC)
    return sha


def _runs(setup: Setup) -> list[dict[str, Any]]:
    listed = setup.kube.get(f"/apis/{TEKTON_API}/namespaces/{setup.namespace}/pipelineruns")
    return list(listed["items"])


def test_a_pull_request_filtered_out_after_a_failed_push_leaves_it_red(
    setup: Callable[[], Setup], controller: ControllerProcess,
) -> None:
    ferry = setup()
    sha = _with_spec(ferry, "a1" * 20)
    ferry.push_that_fails(controller, sha=sha)
    before = ferry.shown(sha)

    answer = ferry.post(ferry.payload("pull_request.opened.json", sha=sha), event="pull_request")

    assert "`when` does not hold" in answer["skipped"]
    assert ferry.shown(sha) == before and ferry.verdict(sha) == "failure"
    assert len(_runs(ferry)) == 1


def test_a_tag_on_a_failed_commit_leaves_it_red(
    setup: Callable[[], Setup], controller: ControllerProcess,
) -> None:
    ferry = setup()
    sha = _with_spec(ferry, "b2" * 20)
    ferry.push_that_fails(controller, sha=sha)
    before = ferry.shown(sha)

    answer = ferry.post(ferry.payload("push.tag-create.json", sha=sha), event="push")

    assert "skipped" in answer, answer
    assert ferry.shown(sha) == before and ferry.verdict(sha) == "failure"


def test_a_second_branch_at_a_failed_commit_leaves_it_red(
    setup: Callable[[], Setup], controller: ControllerProcess,
) -> None:
    ferry = setup()
    sha = _with_spec(ferry, "c3" * 20)
    ferry.push_that_fails(controller, sha=sha)
    before = ferry.shown(sha)
    other = ferry.payload("push.commits.json", sha=sha) | {"ref": "refs/heads/elsewhere"}

    answer = ferry.post(other, event="push")

    assert "`when` does not hold" in answer["skipped"]
    assert ferry.shown(sha) == before and ferry.verdict(sha) == "failure"


def test_a_skip_redelivered_after_the_commit_failed_leaves_it_red(
    setup: Callable[[], Setup], controller: ControllerProcess,
) -> None:
    ferry = setup()
    sha = _with_spec(ferry, "d4" * 20)
    pull_request = ferry.payload("pull_request.opened.json", sha=sha)
    # First the skip, on a commit nothing has reported on: true, so it is shown.
    ferry.post(pull_request, event="pull_request", delivery="the-skip")
    assert ferry.verdict(sha) in ("success", "skipped")
    ferry.push_that_fails(controller, sha=sha)
    before = ferry.shown(sha)

    # Redelivered by the forge (same id), and as after a receiver restart (a new id).
    ferry.post(pull_request, event="pull_request", delivery="the-skip")
    ferry.post(pull_request, event="pull_request", delivery="the-skip-after-a-restart")

    assert ferry.shown(sha) == before and ferry.verdict(sha) == "failure"
