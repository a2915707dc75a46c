"""Signed pushes through the real receiver into a real API server, against raw creates.

    python3 -m bench.webhooks [--events N] [--concurrency C]   # FERRY_CLUSTER_BIN as tests/run

Starts etcd + kube-apiserver (the test harness's ControlPlane) with the CRDs, a Repository and
its Secret, and the receiver under uvicorn on 127.0.0.1 (the fake forge in-process serves the
spec and takes the statuses). Each event is a push of a new commit, so each creates one
PipelineRun. Then the same number of the same PipelineRuns are created directly with the same
client (`PipelineRuns.create`, same pool size, same concurrency). The ratio of the two rates
is the receiver's overhead on top of what the API server costs anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

from ci import logs
from ci.forges.types import ForgeKind
from ci.kube.connecting import api_client
from ci.kube.pipeline_runs import PipelineRuns
from ci.settings import KubernetesSettings, Settings
from pipelines.events import Event, EventKind
from pipelines.linting import load_spec
from pipelines.planning import Plan, plan
from pipelines.tekton import CompileOptions, compile_pipeline_run
from tests.cluster.control_plane import ControlPlane, wait_for_service_account
from tests.cluster.fixtures import BUILD_SCRIPT, FERRY_CRDS
from tests.cluster.resources import Kube
from tests.cluster.tekton import ensure_namespace, install_crds
from tests.fakeforge import FakeForge
from webhooks.app import create_app

SECRET = "bench-secret"
OWNER_NAME = "acme/bench"
URL = f"https://github.com/{OWNER_NAME}"
SPEC = """\
jobs:
  lint:
    image: alpine
    steps: [{run: make lint}]
  test:
    image: alpine
    needs: lint
    matrix: {python: ["3.11", "3.12"]}
    steps: [{run: make test}]
"""


def _sha(index: int) -> str:
    return hashlib.sha1(f"commit-{index}".encode()).hexdigest()


def _push(index: int) -> tuple[bytes, dict[str, str]]:
    payload = {
        "ref": "refs/heads/main", "before": "0" * 40, "after": _sha(index),
        "created": False, "deleted": False, "forced": False, "commits": [],
        "repository": {"full_name": OWNER_NAME, "html_url": URL, "clone_url": f"{URL}.git"},
        "sender": {"login": "octocat"},
    }  # fmt: skip
    body = json.dumps(payload).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "X-GitHub-Event": "push", "X-GitHub-Delivery": f"bench-{index}",
        "X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json",
    }  # fmt: skip


async def _post_all(port: int, events: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=60) as client:  # fmt: skip

        async def one(index: int) -> None:
            body, headers = _push(index)
            async with semaphore:
                started = time.perf_counter()
                response = await client.post("/hooks", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
            if response.status_code != 202 or "pipelineRuns" not in response.json():
                raise RuntimeError(f"event {index}: {response.status_code} {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(one(index) for index in range(events)))
        return latencies, time.perf_counter() - started


def _raw_creates(runs: PipelineRuns, plan_: Plan, *, namespace: str, events: int,
                 concurrency: int) -> float:  # fmt: skip
    bodies = []
    for index in range(events):
        event = Event(kind=EventKind.PUSH, repository=OWNER_NAME, repository_url=f"{URL}.git",
                      sha=_sha(index), ref="refs/heads/main", branch="main")  # fmt: skip
        bodies.append(compile_pipeline_run(
            plan_, event, options=CompileOptions(namespace=namespace, name_prefix="raw-")))
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        created = list(pool.map(runs.create, bodies))
    assert all(run.created for run in created)
    return time.perf_counter() - started


class _TimedTransport(httpx.AsyncBaseTransport):
    """Adds up the time spent in the fake forge, which a real forge would spend remotely."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def _bin_dir() -> Path:
    """Where the test cluster's binaries are: $FERRY_CLUSTER_BIN, else what the build prints."""
    configured = os.environ.get("FERRY_CLUSTER_BIN")
    if configured:
        return Path(configured)
    built = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=True)
    return Path(built.stdout.strip().splitlines()[-1])


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as directory:
        control_plane = ControlPlane(bin_dir=_bin_dir(), directory=Path(directory))
        control_plane.start()
        try:
            _bench(control_plane, args.events, args.concurrency)
        finally:
            control_plane.stop()


def _bench(control_plane: ControlPlane, events: int, concurrency: int) -> None:
    namespace = "bench"
    with control_plane.api_client() as admin:
        kube = Kube(admin)
        bin_dir = control_plane.bin_dir
        install_crds(kube, sorted((bin_dir.parent / "tekton-config" / "300-crds").glob("*.yaml")))
        install_crds(kube, sorted(FERRY_CRDS.glob("*.yaml")))
        ensure_namespace(kube, namespace)
        wait_for_service_account(admin, namespace)
        forge = FakeForge(ForgeKind.GITHUB)
        kube.create({"apiVersion": "v1", "kind": "Secret",
                     "metadata": {"name": "forge", "namespace": namespace},
                     "stringData": {"webhook-secret": SECRET, "token": "test-token"}})  # fmt: skip
        kube.create({"apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
                     "metadata": {"name": "bench", "namespace": namespace},
                     "spec": {"forge": "github", "url": URL, "apiURL": forge.api_url,
                              "secretRef": {"name": "forge"}}})  # fmt: skip
    for index in range(events):
        forge.add_file(OWNER_NAME, _sha(index), ".ci.yaml", SPEC)

    kubernetes = KubernetesSettings(kubeconfig=control_plane.kubeconfig, pool_size=concurrency)
    settings = Settings(kubernetes=kubernetes)
    logs.configure(json=True, level="warning")  # production logs at info cost ~5%; not the point
    transport = _TimedTransport(forge.transport())
    app = create_app(settings, forge_transport=transport)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           access_log=False, log_config=None))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    while httpx.get(f"http://127.0.0.1:{port}/readyz").status_code != 200:
        time.sleep(0.05)
    try:
        latencies, seconds = asyncio.run(_post_all(port, events, concurrency))
    finally:
        server.should_exit = True
        thread.join()

    spec, _ = load_spec(SPEC)
    planned = plan(spec, Event(kind=EventKind.PUSH, repository=OWNER_NAME, repository_url=URL,
                               sha=_sha(0), ref="refs/heads/main", branch="main"))  # fmt: skip
    assert isinstance(planned, Plan)
    with api_client(kubernetes) as api:
        runs = PipelineRuns(api, request_timeout=kubernetes.request_timeout_seconds)
        raw_seconds = _raw_creates(runs, planned, namespace=namespace,
                                   events=events, concurrency=concurrency)  # fmt: skip

    receiver_rate = events / seconds
    raw_rate = events / raw_seconds
    print(f"{events} signed pushes, {concurrency} at a time, through the receiver:")
    print(f"  p50 {_percentile(latencies, 0.50) * 1000:.1f} ms   "
          f"p99 {_percentile(latencies, 0.99) * 1000:.1f} ms   {receiver_rate:.0f} events/s")
    forge_ms = transport.seconds / events * 1000
    print(f"  of which the fake forge (in-process, validating against OpenAPI): "
          f"{forge_ms:.1f} ms per event over {transport.calls / events:.0f} calls")
    print(f"raw PipelineRun creates, same client and concurrency: {raw_rate:.0f} runs/s")
    print(f"receiver / raw: {receiver_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
