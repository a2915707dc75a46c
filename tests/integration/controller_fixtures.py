"""Helpers for the controller's integration tests: a Repository wired to a fake forge served on
127.0.0.1, Ferry-labelled runs, statuses written as Tekton writes them, and the controller run
as a process (so a test can SIGKILL it)."""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ci.forges.types import ForgeKind
from ci.kube import labels
from tests.cluster.control_plane import ControlPlane
from tests.cluster.processes import Component, wait_until
from tests.cluster.resources import Kube, Obj
from tests.cluster.tekton import TEKTON_API
from tests.fakeforge.forge import FakeForge
from tests.fakeforge.serving import serve

REPO = Path(__file__).resolve().parents[2]
OWNER_NAME = "acme/widget"
REPOSITORY_URL = f"https://github.com/{OWNER_NAME}"
TOKEN = "test-token"
# Generous: the tests must not depend on the machine's speed.
WAIT = 120.0


@dataclass
class ServedForge:
    forge: FakeForge
    api_url: str

    def final_statuses(self, sha: str) -> list[dict[str, Any]]:
        return [s for s in self.forge.statuses_for(OWNER_NAME, sha)
                if s["state"] not in ("pending",)]

    def states(self, sha: str) -> list[str]:
        return [s["state"] for s in self.forge.statuses_for(OWNER_NAME, sha)]


@pytest.fixture
def served_forge() -> Iterator[ServedForge]:
    forge = FakeForge(ForgeKind.GITHUB, tokens={TOKEN})
    with serve(forge) as api_url:
        yield ServedForge(forge, api_url)
    forge.assert_no_violations()


APP_ID, INSTALLATION_ID = 4242, 77


def as_github_app(forge: FakeForge) -> dict[str, str]:
    """Make `forge` accept a new GitHub App key (app `APP_ID`); the Secret data holding it,
    for `create_repository(..., github_app=(APP_ID, INSTALLATION_ID), secret_data=...)`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forge.app_id = str(APP_ID)
    forge.app_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    return {"private-key": private_pem}


def create_repository(kube: Kube, namespace: str, *, api_url: str, keep_runs: int = 20,
                      github_app: tuple[int, int] | None = None,
                      secret_data: dict[str, str] | None = None) -> None:
    data = secret_data or {"token": TOKEN, "webhook-secret": "hook-secret"}
    kube.create({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "widget-forge", "namespace": namespace},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    })
    spec: dict[str, Any] = {
        "forge": "github", "url": REPOSITORY_URL, "apiURL": api_url,
        "secretRef": {"name": "widget-forge"}, "keepRuns": keep_runs,
    }
    if github_app is not None:
        spec["githubApp"] = {"appID": github_app[0], "installationID": github_app[1]}
    kube.create({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "widget", "namespace": namespace},
        "spec": spec,
    })


def sha_for(index: int) -> str:
    return f"{index:040x}"


def ferry_run(namespace: str, name: str, *, sha: str, jobs: Sequence[str] = ("build",),
              pending: bool = True, extra_labels: dict[str, str] | None = None,
              extra_annotations: dict[str, str] | None = None) -> Obj:
    """A run as the receiver creates it, whose status the test writes (as Tekton would)
    through the status subresource.

    `spec.managedBy` names another controller, which makes the session's real Tekton
    ignore the run (REFERENCE.md section 1): otherwise it reconciles
    the pending run and can write `PipelineRunPending` back over the test's `Running`, and
    the controller rightly reports that step backwards as a new status."""
    spec: dict[str, Any] = {
        "pipelineSpec": {
            "tasks": [
                {"name": job, "taskSpec": {
                    "metadata": {"labels": {labels.JOB: job, labels.SPEC_JOB: job}},
                    "steps": [{"name": "run", "image": "alpine", "script": "true"}],
                }}
                for job in jobs
            ]
        },
    }
    if pending:
        spec["status"] = labels.PENDING
    spec["managedBy"] = "ferry.dev/tests"
    return {
        "apiVersion": TEKTON_API, "kind": "PipelineRun",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": {labels.MANAGED_BY: labels.MANAGED_BY_FERRY, **(extra_labels or {})},
            "annotations": {
                labels.REPOSITORY: OWNER_NAME, labels.REPOSITORY_URL: REPOSITORY_URL,
                labels.SHA: sha, **(extra_annotations or {}),
            },
        },
        "spec": spec,
    }


def run_path(namespace: str, name: str) -> str:
    return f"/apis/{TEKTON_API}/namespaces/{namespace}/pipelineruns/{name}"


def set_condition(kube: Kube, namespace: str, name: str, status: str, reason: str, *,
                  until_stable: bool = True) -> Obj:
    """Write the `Succeeded` condition through the status subresource, as Tekton does
    (REFERENCE.md section 5: Unknown/Running, False/Cancelled, False/PipelineRunTimeout...).

    When the session's Tekton controller runs too, it reconciles these pending runs and may
    write back a status computed before ours (`PipelineRunPending`). It leaves finished runs
    alone, so a final condition is written until it stays (`until_stable=False` where no
    Tekton runs, as in the bench).
    """
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body: dict[str, Any] = {"status": {
        "conditions": [{"type": "Succeeded", "status": status, "reason": reason,
                        "message": reason, "lastTransitionTime": now}],
        "startTime": now,
    }}
    if status != "Unknown":
        body["status"]["completionTime"] = now
    path = f"{run_path(namespace, name)}/status"
    written = kube.request("PATCH", path, body=body,
                           content_type="application/merge-patch+json")
    if status == "Unknown" or not until_stable:
        return written
    deadline = time.monotonic() + WAIT
    stable = 0
    while stable < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        current = (kube.get(run_path(namespace, name)).get("status") or {}).get("conditions")
        if current and current[0].get("reason") == reason:
            stable += 1
        else:
            stable = 0
            written = kube.request("PATCH", path, body=body,
                                   content_type="application/merge-patch+json")
    return written


def reported(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    run = kube.get(run_path(namespace, name))
    text = (run["metadata"].get("annotations") or {}).get(labels.REPORTED)
    return json.loads(text) if text else {}


@dataclass
class ControllerProcess:
    """`python -m ci.controller` against the test cluster, restartable and killable."""

    cluster: ControlPlane
    namespace: str
    log_dir: Path
    identity: str = "controller"
    extra: Sequence[str] = ()
    environment: Mapping[str, str] = field(default_factory=dict)  # FERRY_* settings
    starts: int = 0
    component: Component | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.identity}-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        argv = [
            sys.executable, "-m", "ci.controller",
            "--kubeconfig", str(self.cluster.kubeconfig),
            "--namespace", self.namespace,
            "--identity", self.identity,
            "--lease-namespace", self.namespace,
            "--lease-duration", "4", "--lease-renew", "1",
            "--backoff", "0.1,0.2,0.5,1",
            "--log-level", "info",
            *self.extra,
        ]
        # The binding key (ci.kube.binding_keys) in the test's namespace: tests.binding
        # signs hand-made runs with it, and the receivers of the tests use it too.
        env = {**os.environ, "PYTHONPATH": str(REPO),
               "FERRY_KUBERNETES_BINDING_SECRET_NAMESPACE": self.namespace, **self.environment}
        self.component = Component(name=f"ferry-{self.identity}", argv=argv,
                                   log_path=self.log_path, env=env, cwd=REPO)
        self.component.start()

    def wait_ready(self) -> None:
        """Until this incarnation leads and watches (its log says so)."""
        path = self.log_path
        wait_until(lambda: path.is_file() and '"controller running"' in path.read_text(
            errors="replace"), what=f"{self.identity} running", timeout=WAIT,
            watching=self.watching())

    def kill(self) -> None:
        """SIGKILL: no cleanup, no lease release, mid-call if it happens to be in one."""
        component, self.component = self.component, None
        if component is None or component.process is None:
            return
        os.killpg(component.process.pid, signal.SIGKILL)
        component.process.wait(timeout=30)
        component.stop()

    def stop(self) -> None:
        component, self.component = self.component, None
        if component is not None:
            component.stop()

    def logs(self) -> list[dict[str, Any]]:
        entries = []
        for path in sorted(self.log_dir.glob(f"{self.identity}-*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    try:
                        entries.append(json.loads(line))
                    except ValueError:
                        continue
        return entries

    def watching(self) -> list[Component]:
        return [self.component] if self.component is not None else []


@pytest.fixture
def controller(cluster: ControlPlane, namespace: str, tmp_path: Path
               ) -> Iterator[ControllerProcess]:
    process = ControllerProcess(cluster, namespace, tmp_path / "controller")
    yield process
    process.stop()


def wait_for(predicate: Any, *, what: str, controller: ControllerProcess | None = None,
             timeout: float = WAIT) -> None:
    wait_until(predicate, what=what, timeout=timeout,
               watching=controller.watching() if controller is not None else ())
