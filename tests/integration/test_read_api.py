"""The read API and the CLI on the real API server: tokens checked by TokenReview, RBAC
deciding by SubjectAccessReview, a step's log followed live through the simulated kubelet
and finished from the archive, with no gap and no line twice."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest
import uvicorn
import yaml

from ci.archive.directory import DirectoryStore
from ci.archive.layout import StepKey
from ci.archive.steps import StepDetails, archive_step
from ci.masking import Masker
from ci.settings import KubernetesSettings, Settings
from tests.cluster.control_plane import ControlPlane
from tests.cluster.kubelet import RUN_SCRIPTS_ANNOTATION, SimulatedKubelet
from tests.cluster.processes import wait_until
from tests.cluster.resources import Kube
from tests.cluster.tekton import TektonController
from tests.integration.readers import create_team
from webhooks.app import create_app

REPO = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "read-api-hook-secret"
FORGE_TOKEN = "read-api-forge-token"
DEPLOY_KEY = "deploy-key-value-42"


@dataclass
class Setup:
    url: str
    namespace: str
    reader: str  # tokens
    stranger: str
    store: DirectoryStore
    kubeconfigs: dict[str, Path]


def _token(kube: Kube, namespace: str, account: str) -> str:
    kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": account, "namespace": namespace}})
    answer = kube.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}})
    return str(answer["status"]["token"])


def _kubeconfig(cluster: ControlPlane, path: Path, token: str, namespace: str) -> Path:
    config: dict[str, Any] = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    config["contexts"][0]["context"]["namespace"] = namespace
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def _served(settings: Settings, store: DirectoryStore) -> Iterator[str]:
    config = uvicorn.Config(create_app(settings, archive=store), host="127.0.0.1", port=0,
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ferry-read-api", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), what="the receiver", timeout=30)
    assert thread.is_alive()
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200,
                   what="the receiver ready", timeout=30)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def setup(cluster: ControlPlane, kube: Kube, namespace: str, tmp_path: Path) -> Iterator[Setup]:
    create_team(kube, namespace, webhook_secret=WEBHOOK_SECRET, token=FORGE_TOKEN,
                deploy_key=DEPLOY_KEY)
    kube.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "run-reader", "namespace": namespace},
                 "rules": [{"apiGroups": ["tekton.dev"], "resources": ["pipelineruns"],
                            "verbs": ["get", "list"]}]})
    reader = _token(kube, namespace, "reader")
    stranger = _token(kube, namespace, "stranger")
    kube.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "run-reader", "namespace": namespace},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "run-reader"},
                 "subjects": [{"kind": "ServiceAccount", "name": "reader",
                               "namespace": namespace}]})
    store = DirectoryStore(tmp_path / "logs")
    # The binding key in the test's namespace: the test cluster has no ferry-system.
    settings = Settings(kubernetes=KubernetesSettings(kubeconfig=cluster.kubeconfig,
                                                      binding_secret_namespace=namespace))
    kubeconfigs = {name: _kubeconfig(cluster, tmp_path / f"{name}.kubeconfig", token, namespace)
                   for name, token in (("reader", reader), ("stranger", stranger))}
    with _served(settings, store) as url:
        yield Setup(url=url, namespace=namespace, reader=reader, stranger=stranger,
                    store=store, kubeconfigs=kubeconfigs)


def _masker() -> Masker:
    return Masker([DEPLOY_KEY, WEBHOOK_SECRET, FORGE_TOKEN])


def _run(namespace: str, name: str, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "ferry",
                       "ferry.dev/repository-object": "app"},
            "annotations": {RUN_SCRIPTS_ANNOTATION: "true", "ferry.dev/branch": "main",
                            "ferry.dev/sha": "0123456789abcdef", "ferry.dev/event": "push"},
        },
        "spec": {"pipelineSpec": {"tasks": [{"name": "build", "taskSpec": {"steps": [
            {"name": "print", "image": "alpine", "script": script,
             "env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {
                 "name": "deploy", "key": "key"}}}]},
            {"name": "after", "image": "alpine", "script": "echo after"},
        ]}}]}},
    }


def _ferry(setup: Setup, user: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "ci.cli", *args, "--kubeconfig", str(setup.kubeconfigs[user]),
            "--api", setup.url]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "FERRY_API_URL": "", "FERRY_TOKEN": ""}


def _get(setup: Setup, path: str, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{setup.url}/api/v1{path}", headers=headers, timeout=30)


def test_rbac_decides_who_reads_runs_and_logs(setup: Setup) -> None:
    ns = setup.namespace
    key = StepKey(namespace=ns, repository="app", run="pruned-run", job="build", step="print")
    archive_step(setup.store, key=key, chunks=[f"old output {DEPLOY_KEY}\n".encode()],
                 masker=_masker(), details=StepDetails(job="build", exit_code=1,
                                                       started_at="2026-01-01T00:00:00Z",
                                                       finished_at="2026-01-01T00:01:00Z"))
    runs = f"/namespaces/{ns}/repositories/app/runs"
    assert _get(setup, runs, None).status_code == 401
    assert _get(setup, runs, "not-a-token").status_code == 401
    denied = _get(setup, runs, setup.stranger)
    assert denied.status_code == 404, denied.text
    assert "pipelineruns" in denied.json()["error"]
    # The same answer for a Repository that does not exist: nothing is revealed to a stranger.
    absent = _get(setup, f"/namespaces/{ns}/repositories/nothing/runs", setup.stranger)
    assert (absent.status_code, absent.json()) == (404, denied.json())
    assert _get(setup, f"/namespaces/{ns}/repositories/nothing/runs", setup.reader
                ).status_code == 404
    listed = _get(setup, runs, setup.reader)
    assert listed.status_code == 200, listed.text
    [pruned] = listed.json()["runs"]
    assert pruned["name"] == "pruned-run" and pruned["state"] == "failure"
    assert not pruned["inCluster"] and pruned["durationSeconds"] == 60
    repositories = _get(setup, "/repositories", setup.reader).json()["repositories"]
    assert {"namespace": ns, "name": "app"}.items() <= repositories[0].items()
    assert _get(setup, "/repositories", setup.stranger).json()["repositories"] == []
    log = f"{runs}/pruned-run/jobs/build/steps/print/log"
    assert _get(setup, log, setup.stranger).status_code == 404
    whole = _get(setup, log, setup.reader)
    assert whole.text == "old output ***\n" and whole.headers["X-Ferry-Log"] == "archived"
    part = _get(setup, log, setup.reader, Range="bytes=4-9")
    assert part.status_code == 206 and part.text == "output"
    assert part.headers["Content-Range"] == "bytes 4-9/15"
    assert _get(setup, f"{log}?offset=12", setup.reader).text == "**\n"

    # The CLI: a clear error without permission, the table with it.
    refused = subprocess.run(_ferry(setup, "stranger", "runs", "app"), capture_output=True,
                             text=True, env=_env(), timeout=60, check=False, cwd=REPO)
    assert refused.returncode == 1
    # A denial reads as "nothing found" (#13), and says which permission reading needs.
    assert refused.stderr.startswith(f"ferry runs: nothing found in namespace {setup.namespace} "
                                     "that system:serviceaccount:"), refused.stderr
    assert "get` on `pipelineruns`" in refused.stderr
    shown = subprocess.run(_ferry(setup, "reader", "runs", "app"), capture_output=True,
                           text=True, env=_env(), timeout=60, check=True, cwd=REPO)
    [header, row] = shown.stdout.splitlines()
    assert header.split() == ["RUN", "REPOSITORY", "STATE", "BRANCH", "SHA", "EVENT",
                              "DURATION"]
    assert row.split() == ["pruned-run", f"{ns}/app", "failure", "-", "-", "-", "1m00s"]
    cancel = subprocess.run(_ferry(setup, "stranger", "cancel", "pruned-run")[:-2],
                            capture_output=True, text=True, env=_env(), timeout=60,
                            check=False, cwd=REPO)
    assert cancel.returncode == 1
    assert "permission denied: you may not patch pipelineruns" in cancel.stderr
    missing = subprocess.run(_ferry(setup, "reader", "logs", "no-such-run"),
                             capture_output=True, text=True, env=_env(), timeout=60,
                             check=False, cwd=REPO)
    assert missing.returncode == 1
    assert missing.stderr == f"ferry logs: run {ns}/no-such-run not found\n"


def test_ferry_logs_follow_shows_lines_as_printed_then_the_archive(
    setup: Setup, kube: Kube, tekton: TektonController, kubelet: SimulatedKubelet,
) -> None:
    ns = setup.namespace
    gate = kubelet.work_dir / f"gate-{ns}"
    script = (f'echo first\necho "key=$API_KEY"\nwhile [ ! -e "{gate}" ]; do sleep 0.1; done\n'
              "printf '\\033[32msecond\\033[0m\\n'\nprintf 'deploy-k'\n")
    kube.create(_run(ns, "follows", script))

    def terminated(container: str) -> bool:
        pods = kube.get(f"/api/v1/namespaces/{ns}/pods",
                        labelSelector="tekton.dev/pipelineRun=follows")["items"]
        statuses = pods[0]["status"].get("containerStatuses", []) if pods else []
        return any(s["name"] == container and "terminated" in s["state"] for s in statuses)

    with subprocess.Popen(_ferry(setup, "reader", "logs", "follows", "build/print", "-f"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                          cwd=REPO) as follow:
        try:
            assert follow.stdout is not None
            assert follow.stdout.readline() == b"first\n"  # shown while the step runs
            assert follow.stdout.readline() == b"key=***\n"  # masked live, as archived
            assert not terminated("step-print")
            gate.touch()
            wait_until(lambda: terminated("step-print"), what="the step to end", timeout=120)
            # What the controller does when a step ends (its archiving is tested on its own).
            pod = kube.get(f"/api/v1/namespaces/{ns}/pods",
                           labelSelector="tekton.dev/pipelineRun=follows")["items"][0]
            core = kubernetes.client.CoreV1Api(kube.api_client)
            printed = core.read_namespaced_pod_log(pod["metadata"]["name"], ns,
                                                   container="step-print")
            archive_step(setup.store, key=StepKey(namespace=ns, repository="app",
                                                  run="follows", job="build", step="print"),
                         chunks=[str(printed).encode()], masker=_masker(),
                         details=StepDetails(job="build", exit_code=0))
            rest, errors = follow.communicate(timeout=120)
        finally:
            if follow.poll() is None:
                follow.kill()
    assert follow.returncode == 0, errors
    # Colours kept, nothing twice, nothing lost. The last bytes could begin the secret, so
    # live masking held them back until the step ended: they came from the archive.
    assert rest == b"\x1b[32msecond\x1b[0m\ndeploy-k"
    # The whole run afterwards: every step, archived or read from its pod.
    wait_until(lambda: terminated("step-after"), what="the last step", timeout=120)
    shown = subprocess.run(_ferry(setup, "reader", "logs", "follows"), capture_output=True,
                           env=_env(), timeout=60, check=True, cwd=REPO)
    assert shown.stdout == (b"==> build/print <==\nfirst\nkey=***\n\x1b[32msecond\x1b[0m\n"
                            b"deploy-k\n==> build/after <==\nafter\n")
    view = _get(setup, f"/namespaces/{ns}/runs/follows", setup.reader).json()
    assert view["repository"] == "app" and view["branch"] == "main" and view["inCluster"]
    [job] = view["jobs"]
    assert [(s["name"], s["archived"]) for s in job["steps"]] == [("print", True),
                                                                   ("after", False)]
