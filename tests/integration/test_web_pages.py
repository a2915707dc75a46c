"""The web pages on the real API server and Tekton: a real PipelineRun's page shows its jobs
in `needs` order with their states, and the failing job's log, read from its pod through
`pods/log` (the simulated kubelet ran the scripts), masked, with the failing line marked.
The sign-in is the pages' unit-test fake (`tests/unit/web/fakes.py`): the real one is
tested with the sign-in."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ci.archive.directory import DirectoryStore
from ci.settings import KubernetesSettings, Settings
from tests.cluster.control_plane import ControlPlane
from tests.cluster.kubelet import RUN_SCRIPTS_ANNOTATION, SimulatedKubelet
from tests.cluster.processes import wait_until
from tests.cluster.resources import Kube
from tests.cluster.tekton import TektonController
from tests.integration.readers import create_team
from tests.unit.web.fakes import VIEWER_COOKIE, FakeAccess, FakeSessions
from webhooks.app import create_app
from webhooks.web.identity import WebSide

DEPLOY_KEY = "web-pages-deploy-key-42"
RUN = "web-run"


def _task(name: str, script: str, *, after: tuple[str, ...] = ()) -> dict[str, Any]:
    task: dict[str, Any] = {"name": name, "taskSpec": {
        "metadata": {"labels": {"ferry.dev/job": name}},
        "steps": [{"name": "main", "image": "alpine", "script": script,
                   "env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {
                       "name": "deploy", "key": "key"}}}]}]}}
    if after:
        task["runAfter"] = list(after)
    return task


@pytest.fixture
def client(cluster: ControlPlane, kube: Kube, namespace: str, tmp_path: Path
           ) -> Iterator[TestClient]:
    create_team(kube, namespace, webhook_secret="hook-secret", token="forge-token",
                deploy_key=DEPLOY_KEY)
    settings = Settings(kubernetes=KubernetesSettings(kubeconfig=cluster.kubeconfig))
    app = create_app(settings, archive=DirectoryStore(tmp_path / "logs"))
    with TestClient(app) as client:
        access = FakeAccess(readers={"reader"})
        app.state.runtime = dataclasses.replace(
            app.state.runtime, web=WebSide(access=access, sessions=FakeSessions()))
        client.cookies.set(VIEWER_COOKIE, "reader")
        # The Repository watch has listed it (the runs page is 404 until then).
        wait_until(lambda: client.get(f"/ui/{namespace}/app").status_code == 200,
                   what="the Repository in the receiver's index", timeout=60)
        yield client


def test_a_real_runs_page_shows_its_jobs_and_the_failing_line(
    client: TestClient, kube: Kube, namespace: str, tekton: TektonController,
    kubelet: SimulatedKubelet,
) -> None:
    kube.create({
        "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
        "metadata": {
            "name": RUN, "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "ferry",
                       "ferry.dev/repository-object": "app"},
            "annotations": {RUN_SCRIPTS_ANNOTATION: "true", "ferry.dev/branch": "main",
                            "ferry.dev/sha": "0123456789abcdef0123456789abcdef01234567",
                            "ferry.dev/event": "push"},
        },
        "spec": {"pipelineSpec": {"tasks": [
            _task("test", 'echo "testing with $API_KEY"\n'
                          "printf '\\033[31mFAILED test_sum: 1 != 2\\033[0m\\n'\n"
                          "echo 'ran 1 test'\nexit 3\n", after=("build",)),
            _task("build", "echo '<b>built</b>'\n"),
        ]}},
    })

    def finished() -> bool:
        run = kube.get(f"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns/{RUN}")
        conditions = (run.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Succeeded" and c.get("status") != "Unknown"
                   for c in conditions)

    wait_until(finished, what="the run to finish", timeout=240)
    base = f"/ui/{namespace}/app"
    runs = client.get(base)
    assert runs.status_code == 200, runs.text
    assert f'<tr class="run" data-run="{RUN}" data-state="failure">' in runs.text
    page = client.get(f"{base}/runs/{RUN}")
    assert page.status_code == 200, page.text
    jobs = re.findall(r'<li class="job" data-job="([a-z0-9-]+)" data-state="([a-z_]+)"',
                      page.text)
    assert jobs == [("build", "success"), ("test", "failure")]  # `needs` order
    assert DEPLOY_KEY not in page.text and "testing with ***" in page.text
    assert "oauth-reader" not in page.text  # the viewer's token never reaches a page
    failing = re.search(r'<div class="line failing">.*?</div>', page.text)
    assert failing is not None
    assert '<span class="fg-red">FAILED test_sum: 1 != 2</span>' in failing.group(0)
    job = client.get(f"{base}/runs/{RUN}/jobs/test").text
    assert '<details class="step" id="main" data-step="main" data-state="failure" open>' in job
    assert 'id="main-L2"' in job and DEPLOY_KEY not in job
    build = client.get(f"{base}/runs/{RUN}/jobs/build").text
    assert "&lt;b&gt;built&lt;/b&gt;" in build
    # Someone the forge does not let read it: the same 404 as for nothing at all.
    client.cookies.set(VIEWER_COOKIE, "stranger")
    assert client.get(f"{base}/runs/{RUN}").status_code == 404
    assert client.get(f"/ui/{namespace}/nothing/runs/{RUN}").status_code == 404


def test_cancel_on_the_run_page_stops_a_real_run(
    client: TestClient, kube: Kube, namespace: str, tekton: TektonController,
    kubelet: SimulatedKubelet,
) -> None:
    gate = kubelet.work_dir / f"gate-{namespace}"
    kube.create({
        "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
        "metadata": {"name": RUN, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "ferry",
                                "ferry.dev/repository-object": "app"},
                     "annotations": {RUN_SCRIPTS_ANNOTATION: "true"}},
        "spec": {"pipelineSpec": {"tasks": [
            _task("wait", f'while [ ! -e "{gate}" ]; do sleep 0.1; done\n')]}},
    })
    path = f"/ui/{namespace}/app/runs/{RUN}"
    client.cookies.set(VIEWER_COOKIE, "writer")
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime.web.access, FakeAccess)
    runtime.web.access.writers.add("writer")
    wait_until(lambda: 'id="cancel"' in client.get(path).text, what="the run to start",
               timeout=120)
    answer = client.post(f"{path}/cancel", data={"csrf": "csrf-for-writer"},
                         follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"{path}?done=cancelled"
    run = kube.get(f"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns/{RUN}")
    assert run["spec"]["status"] == "Cancelled"
    gate.touch()
