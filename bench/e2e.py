"""The whole path, timed: signed pushes -> receiver -> PipelineRun -> Tekton -> pods -> forge.

    python3 -m bench.e2e [--pushes 50] [--interval 0.5]   # FERRY_CLUSTER_BIN as tests/run

Starts what tests/e2e uses: etcd + kube-apiserver + kube-controller-manager, the real Tekton
controller, the simulated kubelet, deploy/ applied with kubectl, and the receiver and the
controller as processes under their ServiceAccounts' tokens. A fake GitHub served on
127.0.0.1 holds the spec (one job, one step) and takes the statuses.

Each push is a new commit, posted every `--interval` seconds (a steady stream, not a burst).
Printed, p50 and p99 over the pushes:
- webhook -> running: from posting the delivery to the forge holding the run's "Running"
  status (receiver, API server, Tekton creating the TaskRun, controller, forge), split by
  whose work each part is (below);
- kubelet done -> final: from the simulated kubelet finishing the job's last step to the
  forge holding the final status (Tekton reading the pod, TaskRun and PipelineRun status,
  controller, forge). The kubelet writes the pod's end a few ms after its last step record.

The split comes from watches of the bench namespace's PipelineRuns, TaskRuns and pods (each
event arrives a few ms after the API server wrote it), noting when each first shows:
- Ferry's receiver: delivery posted -> PipelineRun created;
- Tekton: PipelineRun created -> TaskRun created -> pod created; and, in parallel with the
  pod's start, PipelineRun created -> PipelineRun marked Running (its condition's reason);
- the kubelet: pod created -> bound to the node -> Running. The kubelet here is the test
  suite's simulated one (tests/cluster/kubelet.py), which binds pods itself (there is no
  scheduler) and polls the pod list every 0.2 s: this share is not a real kubelet's;
- Ferry's controller: PipelineRun marked Running -> the forge holds "Running". The
  controller reports from the PipelineRun's condition, not the pod's, so this part overlaps
  the kubelet's rather than following it.

Times are taken by one thread polling the fake forge's statuses and the kubelet's step
records every 2 ms, so each figure carries up to ~2 ms of polling error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes

from ci.forges.types import ForgeKind
from ci.kube import labels
from tests.cluster.control_plane import ControlPlane, wait_for_service_account
from tests.cluster.fixtures import BUILD_SCRIPT, FERRY_CRDS
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube
from tests.cluster.tekton import TektonController, ensure_namespace, install_crds
from tests.contracts import CONTRACTS
from tests.e2e.delivering import Team, push_payload, sha_of, signed, team
from tests.e2e.installation import Installation, running

REPO = Path(__file__).resolve().parents[1]

NAMESPACE = "bench-e2e"
SPEC = """\
jobs:
  build:
    image: docker.io/library/alpine:3.20
    steps:
      - name: compile
        run: make
"""
LAST_STEP = "step-compile"
POLL_SECONDS = 0.002
WAIT_SECONDS = 600.0


@dataclass
class Push:
    sha: str
    run: str = ""
    posted: float = 0.0
    running: float | None = None
    kubelet_done: float | None = None
    final: float | None = None


@dataclass
class Milestones:
    """When each run's PipelineRun, TaskRun and pod first showed each state, by run name."""

    api: Any  # kubernetes.client.ApiClient
    namespace: str
    seen: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _watches: list[Any] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def at(self, run: str, milestone: str) -> float | None:
        return self.seen.get((run, milestone))

    def _note(self, run: str, milestone: str, now: float) -> None:
        with self._lock:
            self.seen.setdefault((run, milestone), now)

    def start(self) -> None:
        custom = kubernetes.client.CustomObjectsApi(self.api)
        core = kubernetes.client.CoreV1Api(self.api)

        def custom_list(plural: str) -> Callable[..., Any]:
            def listing(**kwargs: Any) -> Any:
                return custom.list_namespaced_custom_object(
                    "tekton.dev", "v1", self.namespace, plural, **kwargs)
            return listing

        sources = [(custom_list("pipelineruns"), self._pipeline_run),
                   (custom_list("taskruns"), self._task_run),
                   (lambda **kwargs: core.list_namespaced_pod(self.namespace, **kwargs),
                    self._pod)]
        for listing, consume in sources:
            watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
            self._watches.append(watch)
            thread = threading.Thread(target=self._follow, args=(watch, listing, consume),
                                      daemon=True, name="milestones")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for watch in self._watches:
            watch.stop()

    def _follow(self, watch: Any, listing: Callable[..., Any],
                consume: Callable[[Mapping[str, Any], float], None]) -> None:
        while not self._stopping.is_set():
            try:
                for event in watch.stream(listing, timeout_seconds=3600):
                    consume(event["raw_object"], time.perf_counter())
            except Exception:  # a dropped watch: start again (missed events are re-listed)
                time.sleep(0.1)

    def _pipeline_run(self, run: Mapping[str, Any], now: float) -> None:
        name = run["metadata"]["name"]
        self._note(name, "created", now)
        for condition in (run.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Succeeded" and condition.get("reason") == "Running":
                self._note(name, "marked running", now)

    def _task_run(self, task_run: Mapping[str, Any], now: float) -> None:
        run = ((task_run.get("metadata") or {}).get("labels") or {}).get(
            labels.TEKTON_PIPELINE_RUN)
        if run:
            self._note(run, "task run created", now)

    def _pod(self, pod: Mapping[str, Any], now: float) -> None:
        run = ((pod.get("metadata") or {}).get("labels") or {}).get(labels.TEKTON_PIPELINE_RUN)
        if not run:
            return
        self._note(run, "pod created", now)
        if (pod.get("spec") or {}).get("nodeName"):
            self._note(run, "pod bound", now)
        if (pod.get("status") or {}).get("phase") == "Running":
            self._note(run, "pod running", now)


@dataclass
class Observer:
    """Notes when each push's statuses and last step first appear."""

    repository: Team
    kubelet: SimulatedKubelet
    pushes: list[Push]
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        seen_records = 0
        while not self.stop.is_set():
            now = time.perf_counter()
            records = self.kubelet.records[seen_records:]
            seen_records += len(records)
            for push in self.pushes:
                if not push.run:
                    continue
                for record in records:
                    if record.container == LAST_STEP and record.pod.startswith(push.run):
                        push.kubelet_done = now
                statuses = self.repository.statuses(push.sha)
                if push.running is None and any(s["description"] == "Running"
                                                for s in statuses):
                    push.running = now
                if push.final is None and any(s["state"] not in ("pending", "running")
                                              for s in statuses):
                    push.final = now
            time.sleep(POLL_SECONDS)


def _bin_dir() -> Path:
    configured = os.environ.get("FERRY_CLUSTER_BIN")
    if configured:
        return Path(configured)
    built = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=True)
    return Path(built.stdout.strip().splitlines()[-1])


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no samples"
    return (f"{name}: p50 {_percentile(values, 0.5) * 1000:.0f} ms, "
            f"p99 {_percentile(values, 0.99) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms ({len(values)} pushes)")


def _wait_for_the_index(ferry: Installation, repository: Team) -> None:
    """Until the receiver's Repository index has the new Repository: a ping answers 200."""
    payload = json.loads((CONTRACTS / "github" / "webhooks" / "ping.json").read_bytes())
    payload["repository"] |= {"full_name": repository.owner_name, "html_url": repository.url}
    body, headers = signed(ForgeKind.GITHUB, "ping", payload)
    deadline = time.monotonic() + WAIT_SECONDS
    while ferry.post(body, headers).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError("the receiver never found the Repository")
        time.sleep(0.1)


def _bench(ferry: Installation, repository: Team, kubelet: SimulatedKubelet,
           milestones: Milestones, *, pushes: int, interval: float) -> None:
    planned = [Push(sha_of(f"bench push {index}")) for index in range(pushes)]
    for push in planned:
        repository.forge.add_file(repository.owner_name, push.sha, ".ci.yaml", SPEC)
    _wait_for_the_index(ferry, repository)
    observer = Observer(repository, kubelet, planned)
    thread = threading.Thread(target=observer.run, name="observer", daemon=True)
    thread.start()
    milestones.start()
    try:
        for index, push in enumerate(planned):
            # Distinct branches: no push cancels another.
            body, headers = signed(ForgeKind.GITHUB, "push",
                                   push_payload(repository, push.sha, branch=f"b{index}"))
            push.posted = time.perf_counter()
            response = ferry.post(body, headers)
            assert response.status_code == 202, response.text
            [push.run] = response.json()["pipelineRuns"]
            time.sleep(interval)
        deadline = time.monotonic() + WAIT_SECONDS
        while any(p.final is None for p in planned) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        observer.stop.set()
        thread.join()
        milestones.stop()
    print(f"{pushes} pushes, one every {interval:.2f}s; 2-core machine shared by etcd, "
          "the API server, Tekton, the kubelet, both Ferry processes and this script")
    print(_line("webhook -> running", [p.running - p.posted for p in planned
                                       if p.running is not None]))
    _print_split(planned, milestones)
    print(_line("kubelet done -> final", [p.final - p.kubelet_done for p in planned
                                          if p.final is not None and p.kubelet_done is not None]))
    print(_line("webhook -> final (whole run)", [p.final - p.posted for p in planned
                                                 if p.final is not None]))
    missing = [p.sha for p in planned if p.final is None]
    if missing:
        print(f"no final status for {len(missing)} pushes within {WAIT_SECONDS:.0f}s")


# (whose, from, to): each a part of "webhook -> running", "posted" and "forge running" being
# the bench's own times, the others the watches' (`Milestones`).
SPLIT = (
    ("Ferry's receiver", "posted", "created"),
    ("Tekton", "created", "task run created"),
    ("Tekton", "task run created", "pod created"),
    ("kubelet (simulated)", "pod created", "pod bound"),
    ("kubelet (simulated)", "pod bound", "pod running"),
    ("Tekton", "created", "marked running"),
    ("Ferry's controller", "marked running", "forge running"),
)


def _print_split(planned: list[Push], milestones: Milestones) -> None:
    print("  of which (Tekton marks the run Running from its TaskRun, not the pod; the "
          "controller reports from that, so the kubelet's rows run alongside the last two):")
    for whose, start, end in SPLIT:
        values = []
        for push in planned:
            times = {"posted": push.posted, "forge running": push.running}
            began = times.get(start) or milestones.at(push.run, start)
            ended = times.get(end) or milestones.at(push.run, end)
            if began is not None and ended is not None:
                values.append(ended - began)
        print("    " + _line(f"{whose}: {start} -> {end}", values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between pushes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-e2e-") as directory:
        root = Path(directory)
        control_plane = ControlPlane(bin_dir=_bin_dir(), directory=root / "cluster")
        tekton = TektonController(control_plane=control_plane,
                                  config_dir=control_plane.bin_dir.parent / "tekton-config")
        kubelet = SimulatedKubelet(api_client_factory=control_plane.api_client,
                                   work_dir=root / "kubelet")
        control_plane.start()
        try:
            with control_plane.api_client() as admin:
                kube = Kube(admin)
                install_crds(kube, sorted(FERRY_CRDS.glob("*.yaml")))
                tekton.install(kube)
                tekton.start()
                ensure_namespace(kube, "tekton-ready")
                tekton.wait_ready(kube, "tekton-ready")
                kubelet.start()
                ensure_namespace(kube, NAMESPACE)
                wait_for_service_account(admin, NAMESPACE)
                with (running(control_plane, kube, control_plane.bin_dir, root / "ferry")
                      as ferry, team(kube, NAMESPACE, ForgeKind.GITHUB) as repository):
                    milestones = Milestones(admin, NAMESPACE)
                    _bench(ferry, repository, kubelet, milestones, pushes=args.pushes,
                           interval=args.interval)
        finally:
            kubelet.stop()
            tekton.stop()
            control_plane.stop()


if __name__ == "__main__":
    main()
