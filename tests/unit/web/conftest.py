"""The pages through the real app and a real read service over a directory archive; the
cluster's PipelineRuns and TaskRuns as objects in memory, the sign-in as simple fakes
(`FakeAccess`, `FakeSessions`: the real ones are tested with the sign-in), the forge as the
fake GitHub of the receiver's tests (re-runs go through `/retest`'s code)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from ci.archive.directory import DirectoryStore
from ci.archive.layout import StepKey
from ci.archive.steps import StepDetails, archive_step, record_lost
from ci.forges.types import ForgeKind
from ci.kube.pipeline_runs import PipelineRuns
from ci.kube.pods import LogUnavailableError
from ci.kube.repositories import Repository
from ci.kube.reviews import Identity, Reviews
from ci.kube.step_logs import StepLogs
from ci.masking import Masker
from tests.fakeforge import FakeForge
from tests.unit.web.fakes import VIEWER_COOKIE, FakeAccess, FakeSessions
from tests.unit.webhooks.fakes import RecordingBackend, local_repository, settings_for
from webhooks.api.following import FollowTimings
from webhooks.api.service import ReadService
from webhooks.app import create_app
from webhooks.web.identity import WebSide

URL = "https://github.com/acme/app"
SECRET = "s3cr3t-deploy-key"


@dataclass
class FakeCluster:
    """PipelineRuns, TaskRuns and container logs, as `PipelineRuns` and `StepLogs` serve
    them."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    logs: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (pod, container)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.runs.get(name)

    def list(self, namespace: str, *, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        return [run for run in self.runs.values()
                if all(run["metadata"]["labels"].get(k) == v for k, v in selector.items())]

    def task_runs_of(self, namespace: str, run: str) -> list[dict[str, Any]]:
        return self.task_runs.get(run, [])

    def read(self, namespace: str, pod: str, container: str, *, follow: bool
             ) -> Iterator[bytes]:
        if (pod, container) not in self.logs:
            raise LogUnavailableError(f"pod {pod} not found")
        return iter([self.logs[pod, container]])


class _StepLogs:
    def __init__(self, cluster: FakeCluster) -> None:
        self._cluster = cluster

    def task_runs(self, namespace: str, run: str) -> list[dict[str, Any]]:
        return self._cluster.task_runs_of(namespace, run)

    def read(self, namespace: str, pod: str, container: str, *, follow: bool
             ) -> Iterator[bytes]:
        return self._cluster.read(namespace, pod, container, follow=follow)


@dataclass
class Site:
    client: TestClient
    store: DirectoryStore
    cluster: FakeCluster
    access: FakeAccess
    repository: Repository
    backend: RecordingBackend
    forge: FakeForge

    @property
    def base(self) -> str:
        return f"/ui/{self.repository.namespace}/{self.repository.name}"

    def as_viewer(self, login: str | None) -> None:
        self.client.cookies.clear()
        if login:
            self.client.cookies.set(VIEWER_COOKIE, login)

    def archive(self, run: str, job: str, step: str, text: str, *, code: int = 0,
                sha: str = "", variant: str = "") -> None:
        key = StepKey(namespace=self.repository.namespace, repository=self.repository.name,
                      run=run, job=job, step=step)
        archive_step(self.store, key=key, chunks=[text.encode()], masker=Masker([SECRET]),
                     details=StepDetails(job=job, exit_code=code, sha=sha, variant=variant,
                                         forge_repository="acme/app",
                                         started_at="2026-12-01T10:00:00Z",
                                         finished_at="2026-12-01T10:01:30Z"))

    def lose(self, run: str, job: str, step: str, reason: str) -> None:
        key = StepKey(namespace=self.repository.namespace, repository=self.repository.name,
                      run=run, job=job, step=step)
        record_lost(self.store, key=key, details=StepDetails(job=job, exit_code=1),
                    reason=reason)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    forge = FakeForge(ForgeKind.GITHUB)
    app = create_app(settings_for(tmp_path / "state", [local_repository(ForgeKind.GITHUB, URL)]),
                     forge_transport=forge.transport())
    client = TestClient(app, raise_server_exceptions=True)
    client.__enter__()
    runtime = app.state.runtime
    repository = runtime.receiver.repositories.lookup(URL)
    assert isinstance(repository, Repository)
    store = DirectoryStore(tmp_path / "logs")
    cluster = FakeCluster()
    nobody = Identity(username="unused")
    read = ReadService(
        reviews=Reviews(review_token=lambda _t: nobody, review_access=lambda _w, _n: False),
        repositories=lambda: (repository,),
        runs=cast(PipelineRuns, cluster),
        step_logs=cast(StepLogs, _StepLogs(cluster)),
        archive=store,
        masker_for=lambda _run, _repository: Masker([SECRET]),
        timings=FollowTimings(poll=0.01, archive_wait=0.05),
    )
    access = FakeAccess()
    backend = RecordingBackend()
    runtime.receiver.backend = backend
    app.state.runtime = dataclasses.replace(
        runtime, read=read, web=WebSide(access=access, sessions=FakeSessions()))
    yield Site(client=client, store=store, cluster=cluster, access=access,
               repository=repository, backend=backend, forge=forge)
    client.__exit__(None, None, None)


# --- cluster objects ---------------------------------------------------------------------

Task = Mapping[str, Any]


def pipeline_run(repository: Repository, name: str, tasks: list[Task], *,
                 finally_tasks: tuple[Task, ...] = (), state: str = "Succeeded",
                 sha: str = "0123456789abcdef0123456789abcdef01234567",
                 branch: str = "main", pull_request: str = "") -> dict[str, Any]:
    """A PipelineRun as the compiler makes it (the parts the pages read). Each task:
    `name`, `steps`, optional `needs`, `retries`, `matrix` (MATRIX_ values), `job`."""
    def compiled(task: Task) -> dict[str, Any]:
        env = [{"name": f"MATRIX_{k.upper()}", "value": v}
               for k, v in (task.get("matrix") or {}).items()]
        spec: dict[str, Any] = {
            "name": task["name"],
            "taskSpec": {"metadata": {"labels": {"ferry.dev/job": task.get("job", task["name"])}},
                         "steps": [{"name": s, "env": env} for s in task["steps"]]}}
        if task.get("needs"):
            spec["runAfter"] = list(task["needs"])
        if task.get("retries"):
            spec["retries"] = task["retries"]
        return spec

    status = {"Succeeded": ("True", "Succeeded"), "Failed": ("False", "Failed"),
              "Running": ("Unknown", "Running")}[state]
    annotations = {"ferry.dev/sha": sha, "ferry.dev/event": "pull_request" if pull_request
                   else "push", "ferry.dev/repository": "acme/app",
                   "ferry.dev/repository-url": URL + ".git", "ferry.dev/branch": branch}
    if pull_request:
        annotations["ferry.dev/pull-request"] = pull_request
    return {
        "metadata": {"namespace": repository.namespace, "name": name, "uid": f"uid-{name}",
                     "creationTimestamp": "2026-12-01T10:00:00Z",
                     "labels": {"app.kubernetes.io/managed-by": "ferry",
                                "ferry.dev/repository-object": repository.name},
                     "annotations": annotations},
        "spec": {"params": [{"name": "author", "value": "octocat"},
                            {"name": "pull-request-title", "value": "Add <b>bold</b> things"}],
                 "pipelineSpec": {"tasks": [compiled(t) for t in tasks],
                                  "finally": [compiled(t) for t in finally_tasks]}},
        "status": {"conditions": [{"type": "Succeeded", "status": status[0],
                                   "reason": status[1]}],
                   "startTime": "2026-12-01T10:00:00Z",
                   **({"completionTime": "2026-12-01T10:05:00Z"} if state != "Running" else {})},
    }


def task_run(run: str, task: str, steps: Mapping[str, int | None], *, state: str = "Succeeded",
             retried: int = 0) -> dict[str, Any]:
    """A TaskRun whose steps ended with the given exit codes (None: still running)."""
    status = {"Succeeded": ("True", "Succeeded"), "Failed": ("False", "Failed"),
              "Running": ("Unknown", "Running")}[state]
    return {
        "metadata": {"name": f"{run}-{task}", "labels": {"tekton.dev/pipelineRun": run,
                                                         "tekton.dev/pipelineTask": task}},
        "status": {
            "podName": f"{run}-{task}-pod",
            "startTime": "2026-12-01T10:00:10Z",
            **({"completionTime": "2026-12-01T10:02:10Z"} if state != "Running" else {}),
            "conditions": [{"type": "Succeeded", "status": status[0], "reason": status[1]}],
            "retriesStatus": [{}] * retried,
            "steps": [{"name": name, "container": f"step-{name}",
                       **({"terminated": {"exitCode": code}} if code is not None
                          else {"running": {}})} for name, code in steps.items()],
        },
    }


Login = Callable[[str | None], None]
