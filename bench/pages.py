"""Server render time of a run page with 50 jobs (issue #13's goal: under 100 ms).

    python3 -m bench.pages [--jobs 50] [--failed 5] [--renders 100]   (from the repository
    root: a script in bench/ would import bench/webhooks.py for the `webhooks` package)

The run is in the cluster (a PipelineRun and its TaskRuns served from memory, as the API
server would give them), each job in a chain of `needs`, its steps' logs in a directory
archive: `--failed` jobs failed, so the page reads and renders their failing step's log
tail (200 coloured lines each). Each render is one `GET /ui/.../runs/RUN` through the real
app in process (routing, the read service, the archive, Jinja2), timed from request to last
byte; the job page of a failed job (its 200 lines) is timed beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from fastapi.testclient import TestClient
from starlette.requests import Request

from ci.archive.directory import DirectoryStore
from ci.archive.layout import StepKey
from ci.archive.steps import StepDetails, archive_step
from ci.kube.pipeline_runs import PipelineRuns
from ci.kube.repositories import Repository, SecretKeys
from ci.kube.reviews import Identity, Reviews
from ci.kube.step_logs import StepLogs
from ci.masking import Masker
from ci.settings import Settings
from webhooks.api.service import ReadService
from webhooks.app import create_app
from webhooks.web.identity import Viewer, WebSide
from webhooks.wiring import Runtime

RUN = "app-run-1"
REPOSITORY = Repository(namespace="team", name="app", uid="u", forge="github",
                        url="https://github.com/acme/app", secret=SecretKeys(name="s"))
LINE = "\x1b[32mPASSED\x1b[0m tests/test_module.py::test_case_{n} <ok> [ 42%]\n"


class _Cluster:
    def __init__(self, run: dict[str, Any], task_runs: list[dict[str, Any]]) -> None:
        self._run = run
        self._task_runs = task_runs

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._run if name == RUN else None

    def list(self, namespace: str, *, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        return [self._run]

    def task_runs(self, namespace: str, run: str) -> list[dict[str, Any]]:
        return self._task_runs

    def read(self, namespace: str, pod: str, container: str, *, follow: bool
             ) -> Iterator[bytes]:
        return iter(())


class _Everyone:
    async def may_read(self, viewer: Viewer | None, repository: Repository) -> bool:
        return True

    async def may_write(self, viewer: Viewer | None, repository: Repository) -> bool:
        return True


class _Signed:
    def viewer(self, request: Request) -> Viewer | None:
        return Viewer(provider="github", forge="github", login="bench", token="t")

    def csrf_token(self, request: Request) -> str:
        return "token"

    def check_csrf(self, request: Request, token: str | None) -> bool:
        return token == "token"


def _objects(jobs: int, failed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    names = [f"job-{n:02d}" for n in range(jobs)]
    tasks = [{"name": name, "runAfter": [names[n - 1]] if n else [],
              "taskSpec": {"metadata": {"labels": {"ferry.dev/job": name}},
                           "steps": [{"name": "clone"}, {"name": "test"}]}}
             for n, name in enumerate(names)]
    run = {
        "metadata": {"namespace": "team", "name": RUN, "uid": "uid", "creationTimestamp":
                     "2026-12-01T10:00:00Z", "labels": {"ferry.dev/repository-object": "app"},
                     "annotations": {"ferry.dev/sha": "0123456789abcdef" * 2 + "01234567",
                                     "ferry.dev/branch": "main", "ferry.dev/event": "push"}},
        "spec": {"pipelineSpec": {"tasks": tasks}},
        "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}],
                   "startTime": "2026-12-01T10:00:00Z",
                   "completionTime": "2026-12-01T10:09:00Z"},
    }
    task_runs = []
    for n, name in enumerate(names):
        code = 1 if n >= jobs - failed else 0
        task_runs.append({
            "metadata": {"name": f"{RUN}-{name}", "labels": {
                "tekton.dev/pipelineRun": RUN, "tekton.dev/pipelineTask": name}},
            "status": {"podName": f"{RUN}-{name}-pod", "startTime": "2026-12-01T10:00:00Z",
                       "completionTime": "2026-12-01T10:01:00Z",
                       "conditions": [{"type": "Succeeded", "status": "False" if code else
                                       "True", "reason": "Failed" if code else "Succeeded"}],
                       "steps": [{"name": "clone", "terminated": {"exitCode": 0}},
                                 {"name": "test", "terminated": {"exitCode": code}}]}})
    return run, task_runs


def _timed(client: TestClient, path: str, count: int) -> tuple[list[float], list[float]]:
    """Wall time and this process's CPU time (all its threads) of each render: on a shared
    machine the wall time includes waiting for a core, the CPU time does not."""
    took, cpu = [], []
    for _ in range(count):
        began, began_cpu = time.perf_counter(), time.process_time()
        answer = client.get(path)
        took.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        assert answer.status_code == 200, answer.text[:200]
    return took, cpu


def _figures(timed: tuple[list[float], list[float]]) -> str:
    took, cpu = timed
    ordered = sorted(took)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (f"wall p50 {statistics.median(took) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {max(took) * 1000:.1f} ms; CPU p50 {statistics.median(cpu) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--failed", type=int, default=5)
    parser.add_argument("--renders", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = DirectoryStore(Path(scratch))
        run, task_runs = _objects(args.jobs, args.failed)
        for index, task in enumerate(run["spec"]["pipelineSpec"]["tasks"]):
            code = 1 if index >= args.jobs - args.failed else 0
            for step, text in (("clone", "cloned\n"),
                               ("test", "".join(LINE.format(n=n) for n in range(200)))):
                key = StepKey(namespace="team", repository="app", run=RUN, job=task["name"],
                              step=step)
                archive_step(store, key=key, chunks=[text.encode()], masker=Masker(),
                             details=StepDetails(job=task["name"],
                                                 exit_code=code if step == "test" else 0))
        cluster = _Cluster(run, task_runs)
        nobody = Identity(username="bench")
        read = ReadService(
            reviews=Reviews(review_token=lambda _t: nobody, review_access=lambda _w, _n: True),
            repositories=lambda: (REPOSITORY,), runs=cast(PipelineRuns, cluster),
            step_logs=cast(StepLogs, cluster), archive=store,
            masker_for=lambda _run, _repository: Masker())
        started = time.perf_counter()
        app = create_app(Settings())
        made = time.perf_counter() - started
        app.state.runtime = dataclasses.replace(
            _runtime(), read=read, web=WebSide(access=_Everyone(), sessions=_Signed()))
        client = TestClient(app)
        page = "/ui/team/app/runs/" + RUN
        _timed(client, page, 5)  # warm: first imports, the store's directory cache
        took = _timed(client, page, args.renders)
        job = _timed(client, f"{page}/jobs/job-{args.jobs - 1:02d}", max(10, args.renders // 4))
        size = len(client.get(page).content)
    print(f"app made (templates compiled) in {made * 1000:.0f} ms; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"run page, {args.jobs} jobs, {args.failed} failed with their log tails "
          f"({size // 1024} KiB of HTML): {_figures(took)} over {args.renders} renders "
          "(goal: under 100 ms)")
    print(f"job page of a failed job (2 steps, 200 coloured lines): {_figures(job)}")


def _runtime() -> Runtime:
    async def ready() -> str | None:
        return None

    return Runtime(receiver=cast(Any, None), readiness=ready, mode="cluster")


if __name__ == "__main__":
    main()
