"""Signed pushes through the real receiver into a real API server, against raw creates.

    python3 -m bench.webhooks [--events N] [--concurrency C] [--profile FILE]
    # FERRY_CLUSTER_BIN as tests/run; --profile needs py-spy (pip install py-spy)

Starts etcd + kube-apiserver (the test harness's ControlPlane) with the CRDs, a Repository and
its Secret, the fake GitHub in a process of its own (it serves the spec and validates the
warm-up's calls against GitHub's API description, 10 ms of CPU each), and the receiver as
`ferry serve` in another, as a pod runs it. Each event is a push of a new commit, so each
creates one PipelineRun; `--warmup` events go first and are not counted. Then the same number
of the same PipelineRuns are created directly with the same client (`PipelineRuns.create`,
same pool size, same concurrency) from this process. The ratio of the two rates is the
receiver's overhead on top of what the API server costs anyway. Last, the same creates each
after reading the spec from the fake forge (httpx, as the receiver reads it): the two calls
no receiver can skip, without serving the webhook, checking it or compiling the spec. The
CPU each process spent per event is printed; `--profile` samples the receiver with py-spy
while the events are counted and prints where its time went.
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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.bytecode import bytecode_environment
from bench.forge_process import forge_process
from bench.profiling import sampled, summary
from ci.forges.github.authentication import BASE_HEADERS
from ci.forges.types import ForgeKind
from ci.kube.connecting import api_client
from ci.kube.pipeline_runs import PipelineRuns
from ci.settings import KubernetesSettings
from pipelines.events import Event, EventKind
from pipelines.linting import load_spec
from pipelines.planning import Plan, plan
from pipelines.tekton import CompileOptions, compile_pipeline_run
from tests.cluster.control_plane import ControlPlane, wait_for_service_account
from tests.cluster.fixtures import BUILD_SCRIPT, FERRY_CRDS
from tests.cluster.processes import Component, free_port, wait_until
from tests.cluster.resources import Kube
from tests.cluster.tekton import ensure_namespace, install_crds
from tests.e2e.installation import ferry_command

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


async def _post_all(url: str, indices: range, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one(index: int) -> None:
            body, headers = _push(index)
            async with semaphore:
                started = time.perf_counter()
                response = await client.post("/hooks", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
            if response.status_code != 202 or "pipelineRuns" not in response.json():
                raise RuntimeError(f"event {index}: {response.status_code} {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(one(index) for index in indices))
        return latencies, time.perf_counter() - started


def _raw_creates(runs: PipelineRuns, plan_: Plan, *, namespace: str, events: int,
                 concurrency: int, prefix: str, read_spec: httpx.Client | None = None) -> float:
    """Seconds to create `events` runs (compiled beforehand), `concurrency` at a time; with
    `read_spec`, each after reading the spec at its commit from the forge, as the receiver
    does (GitHub's contents API), with the same HTTP library."""
    bodies = []
    for index in range(events):
        event = Event(kind=EventKind.PUSH, repository=OWNER_NAME, repository_url=f"{URL}.git",
                      sha=_sha(index), ref="refs/heads/main", branch="main")  # fmt: skip
        bodies.append(compile_pipeline_run(
            plan_, event, options=CompileOptions(namespace=namespace, name_prefix=prefix)))

    def create(index: int) -> Any:
        if read_spec is not None:
            answer = read_spec.get(f"/repos/{OWNER_NAME}/contents/.ci.yaml",
                                   params={"ref": _sha(index)})
            answer.raise_for_status()
            answer.json()
        return runs.create(bodies[index])

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        created = list(pool.map(create, range(events)))
    assert all(run.created for run in created)
    return time.perf_counter() - started


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
    parser.add_argument("--warmup", type=int, default=32,
                        help="events sent first and not counted")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="sample the receiver with py-spy into FILE and summarise it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as directory:
        root = Path(directory)
        control_plane = ControlPlane(bin_dir=_bin_dir(), directory=root / "cluster")
        control_plane.start()
        try:
            _bench(control_plane, root, events=args.events, warmup=args.warmup,
                   concurrency=args.concurrency,
                   profile=args.profile.resolve() if args.profile else None)
        finally:
            control_plane.stop()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _receiver(control_plane: ControlPlane, directory: Path, *, namespace: str,
              pool_size: int) -> tuple[Component, str]:
    """`ferry serve` as a process of its own, as a pod runs it, with the admin's kubeconfig."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if key != "KUBECONFIG" and not key.startswith("FERRY_")}
    component = Component(
        name="ferry-webhooks",
        argv=[*ferry_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        log_path=directory / "webhooks.log",
        env={**environment, **bytecode_environment(directory),
             "FERRY_KUBERNETES_KUBECONFIG": str(control_plane.kubeconfig),
             "FERRY_KUBERNETES_POOL_SIZE": str(pool_size),
             "FERRY_KUBERNETES_BINDING_SECRET_NAMESPACE": namespace,
             # Production logs at info cost a few % of CPU; not the point here.
             "FERRY_LOGGING_LEVEL": "warning", "FERRY_LOGGING_JSON_LINES": "true"},
        cwd=directory,
    )
    return component, f"http://127.0.0.1:{port}"


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5.0).status_code == 200
    except httpx.TransportError:
        return False


def _bench(control_plane: ControlPlane, directory: Path, *, events: int, warmup: int,
           concurrency: int, profile: Path | None) -> None:
    namespace = "bench"
    # The warm-up's requests are checked against GitHub's description; the counted ones have
    # their shape, and checking each (10 ms of CPU) would take a core the receiver shares.
    with forge_process(ForgeKind.GITHUB, [(OWNER_NAME, "*", ".ci.yaml", SPEC)],
                       directory=directory, validate_first=warmup) as (api_url, forge):
        with control_plane.api_client() as admin:
            kube = Kube(admin)
            bin_dir = control_plane.bin_dir
            install_crds(kube, sorted((bin_dir.parent / "tekton-config" / "300-crds")
                                      .glob("*.yaml")))
            install_crds(kube, sorted(FERRY_CRDS.glob("*.yaml")))
            ensure_namespace(kube, namespace)
            wait_for_service_account(admin, namespace)
            kube.create({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "forge", "namespace": namespace},
                         "stringData": {"webhook-secret": SECRET,
                                        "token": "test-token"}})  # fmt: skip
            kube.create({"apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
                         "metadata": {"name": "bench", "namespace": namespace},
                         "spec": {"forge": "github", "url": URL, "apiURL": api_url,
                                  "secretRef": {"name": "forge"}}})  # fmt: skip
        receiver, url = _receiver(control_plane, directory, namespace=namespace,
                                  pool_size=concurrency)
        receiver.start()
        try:
            wait_until(lambda: _ready(url), what="the receiver's /readyz", timeout=120,
                       watching=[receiver])
            assert receiver.process is not None and forge.process is not None
            # Warm-up events (other commits): imports, first connections, caches.
            asyncio.run(_post_all(url, range(events, events + warmup), concurrency))
            cpu = {name: _cpu_seconds(pid) for name, pid in
                   [("receiver", receiver.process.pid), ("forge", forge.process.pid)]}
            with sampled(receiver.process.pid, profile):
                latencies, seconds = asyncio.run(_post_all(url, range(events), concurrency))
            cpu = {name: _cpu_seconds(pid) - cpu[name] for name, pid in
                   [("receiver", receiver.process.pid), ("forge", forge.process.pid)]}
        finally:
            receiver.stop()

        spec, _ = load_spec(SPEC)
        planned = plan(spec, Event(kind=EventKind.PUSH, repository=OWNER_NAME,
                                   repository_url=URL, sha=_sha(0), ref="refs/heads/main",
                                   branch="main"))  # fmt: skip
        assert isinstance(planned, Plan)
        kubernetes = KubernetesSettings(kubeconfig=control_plane.kubeconfig,
                                        pool_size=concurrency)
        with api_client(kubernetes) as api:
            runs = PipelineRuns(api, request_timeout=kubernetes.request_timeout_seconds)
            raw_seconds = _raw_creates(runs, planned, namespace=namespace, events=events,
                                       concurrency=concurrency, prefix="raw-")
            with httpx.Client(base_url=api_url, timeout=60,
                              headers={**BASE_HEADERS, "Authorization": "Bearer test-token"},
                              limits=httpx.Limits(max_connections=concurrency)) as forge_http:
                floor_seconds = _raw_creates(runs, planned, namespace=namespace, events=events,
                                             concurrency=concurrency, prefix="floor-",
                                             read_spec=forge_http)

    receiver_rate = events / seconds
    raw_rate = events / raw_seconds
    print(f"{events} signed pushes (after {warmup} to warm up), {concurrency} at a time, "
          "through the receiver (its own process; the fake forge in another):")
    print(f"  p50 {_percentile(latencies, 0.50) * 1000:.1f} ms   "
          f"p99 {_percentile(latencies, 0.99) * 1000:.1f} ms   {receiver_rate:.0f} events/s")
    print(f"  CPU per event: receiver {cpu['receiver'] / events * 1000:.1f} ms, "
          f"fake forge {cpu['forge'] / events * 1000:.1f} ms")
    print(f"raw PipelineRun creates, same client and concurrency: {raw_rate:.0f} runs/s")
    print(f"receiver / raw: {receiver_rate / raw_rate:.2f}")
    floor_rate = events / floor_seconds
    print(f"raw spec read from the fake forge + create, the two calls the receiver cannot "
          f"skip: {floor_rate:.0f} events/s; receiver / that: {receiver_rate / floor_rate:.2f}")
    if profile is not None:
        print(f"receiver profile ({profile}):")
        for line in summary(profile):
            print(f"  {line}")


if __name__ == "__main__":
    main()
