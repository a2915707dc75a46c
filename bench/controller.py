"""Benchmark the controller against a real API server and a fake forge on 127.0.0.1.

    python3 -m bench.controller [--active 1000] [--present 10000] [--profile FILE]

1. Creates `--active` runs, starts `python -m ci.controller`, waits until each is reported
   queued (the fake forge checks these requests against the API description, and no later
   ones: the check would be the bottleneck); then moves every run to Running and then to a
   final condition through the status subresource (as Tekton does) and measures, per
   transition, the delay from the API server accepting the status change to the forge
   receiving the status: p50/p99.
2. Reads the controller's RSS (and, after the restart, a bare process's with the same
   imports, and with the libraries' alone: the part no run adds to).
3. Adds finished, already reported runs up to `--present`, lists them once as the
   controller's watch streams them (the least its first list can take on this API server)
   and once in pages (what an API server that does not stream lists gives), restarts the
   controller, and times its startup: to the first full list, and to every run
   looked at ("resumed"); then streams the raw list once more (the API server's speed
   drifts: the two raw figures bracket the restart's).

`--profile FILE` samples the controller with py-spy through the burst and the steady phase
(`bench.profiling`), and the restarted one until it resumed (into `FILE.restart`), and prints
where its CPU went.

Needs the test cluster's binaries (`tests/cluster/build`). Prints what it measured; it
asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from bench.bytecode import bytecode_environment
from bench.profiling import sampled, summary
from ci.controller.reporting import RUN_REPORT, Memory, job_key
from ci.forges.statuses import Conclusion
from ci.forges.types import ForgeKind
from ci.kube import labels, plain
from ci.kube.binding import BindingKeys
from ci.kube.resources import PIPELINE_RUN
from ci.kube.watching import (
    WatchSettings,
    ends_initial_events,
    streamed_list_query,
    whole_lines,
)
from tests.binding import bound, cluster_keys
from tests.cluster.control_plane import ControlPlane
from tests.cluster.processes import wait_until
from tests.cluster.resources import Kube
from tests.cluster.tekton import ensure_namespace, install_crds
from tests.fakeforge.forge import FakeForge
from tests.fakeforge.serving import serve
from tests.integration.controller_fixtures import (
    OWNER_NAME,
    ControllerProcess,
    create_repository,
    ferry_run,
    set_condition,
    sha_for,
)

REPO = Path(__file__).resolve().parents[1]

NAMESPACE = "bench"
STATUS_PATH = re.compile(r"/statuses/([0-9a-f]{40})$")


class Receipts:
    """ASGI wrapper around the fake forge: when each commit status arrived, to the microsecond."""

    def __init__(self, forge: FakeForge) -> None:
        self.forge = forge
        self.kind = forge.kind
        self.lock = threading.Lock()
        self.arrived: dict[tuple[str, str], float] = {}  # (sha, description word) -> time

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.forge(scope, receive, send)
        if scope.get("type") == "http" and scope.get("method") == "POST":
            match = STATUS_PATH.search(scope.get("path", ""))
            if match:
                sha = match.group(1)
                statuses = self.forge.statuses_for(OWNER_NAME, sha)
                if statuses:
                    word = statuses[-1]["description"].split(" ")[0]
                    with self.lock:
                        self.arrived.setdefault((sha, word), time.time())


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--active", type=int, default=1000)
    parser.add_argument("--present", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=16, help="API clients creating runs")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="runs finishing per second in the steady phase")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="sample the controller with py-spy through the burst and steady "
                             "phases, into FILE (py-spy's raw format)")
    args = parser.parse_args()
    bin_dir = Path(os.environ.get("FERRY_CLUSTER_BIN") or subprocess.run(
        [str(REPO / "tests" / "cluster" / "build")], capture_output=True, text=True, check=True
    ).stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as scratch:
        control_plane = ControlPlane(bin_dir=bin_dir, directory=Path(scratch) / "cluster")
        control_plane.start()
        try:
            with control_plane.api_client() as api:
                kube = Kube(api)
                install_crds(kube, sorted((bin_dir.parent / "tekton-config" / "300-crds")
                                          .glob("*.yaml")))
                install_crds(kube, sorted((REPO / "crds").glob("*.yaml")))
                ensure_namespace(kube, NAMESPACE)
                _bench(kube, control_plane, args, Path(scratch))
        finally:
            control_plane.stop()
    return 0


def _bench(kube: Kube, control_plane: ControlPlane, args: argparse.Namespace,
           scratch: Path) -> None:
    forge = FakeForge(ForgeKind.GITHUB, tokens={"test-token"})
    receipts = Receipts(forge)
    pool = concurrent.futures.ThreadPoolExecutor(args.threads)
    with serve(receipts) as api_url:  # type: ignore[arg-type]
        # The CRD's maximum; the controller runs with --no-prune anyway.
        create_repository(kube, NAMESPACE, api_url=api_url, keep_runs=1000)
        signing = _signing(kube)
        active = [f"active-{index:05d}" for index in range(args.active)]
        started = time.monotonic()
        list(pool.map(lambda item: kube.create(bound(ferry_run(NAMESPACE, item[1],
                                                               sha=sha_for(item[0])),
                                                     *signing)),
                      enumerate(active)))
        print(f"created {len(active)} active runs in {time.monotonic() - started:.1f}s")

        controller = ControllerProcess(control_plane, NAMESPACE, scratch / "controller",
                                       extra=("--no-prune",),
                                       environment=bytecode_environment(scratch))
        controller.start()
        controller.wait_ready()

        def reported(word: str) -> int:
            with receipts.lock:
                return sum(1 for (_, seen) in receipts.arrived if seen == word)

        wait_until(lambda: reported("Queued") >= len(active), what="all queued",
                   timeout=600, watching=controller.watching(), interval=0.5)
        print(f"all {len(active)} queued reported {time.monotonic() - started:.1f}s after "
              "creation began (the fake forge checking each request against GitHub's API "
              "description)")
        # Every status the controller posts has the shape of those just checked; checking
        # each (tens of ms of the bench's CPU) would make the forge the figure below.
        forge.validate = False

        changed: dict[tuple[str, str], float] = {}

        def move(index: int, status: str, reason: str, word: str) -> None:
            set_condition(kube, NAMESPACE, active[index], status, reason, until_stable=False)
            changed[(sha_for(index), word)] = time.time()

        def delays(word: str) -> list[float]:
            with receipts.lock:
                return [receipts.arrived[key] - at for key, at in changed.items()
                        if key[1] == word and key in receipts.arrived]

        pid = controller.component.process.pid  # type: ignore[union-attr]
        cpu_before = _cpu_seconds(pid)
        with sampled(pid, args.profile):
            # A burst: every run starts at once (a big merge train); the delay is mostly queueing.
            started = time.monotonic()
            list(pool.map(lambda index: move(index, "Unknown", "Running", "Running"),
                          range(len(active))))
            wait_until(lambda: reported("Running") >= len(active), what="all running",
                       timeout=600, watching=controller.watching(), interval=0.2)
            elapsed = time.monotonic() - started
            burst = delays("Running")
            print(f"burst: {len(burst)} runs Running at once, all reported in {elapsed:.1f}s "
                  f"({len(burst) / elapsed:.0f}/s); delay p50 {statistics.median(burst) * 1000:.0f}"
                  f" ms, p99 {_percentile(burst, 0.99) * 1000:.0f} ms")
            # Steady: runs finish one by one at `--rate` per second, the others stay active.
            interval = 1.0 / args.rate
            for index in range(len(active)):
                succeeded = index % 2 == 0
                move(index, "True" if succeeded else "False",
                     "Succeeded" if succeeded else "Failed",
                     "Succeeded" if succeeded else "Failed")
                time.sleep(interval)
            wait_until(lambda: reported("Succeeded") + reported("Failed") >= len(active),
                       what="all final", timeout=600, watching=controller.watching(), interval=0.2)
            steady = delays("Succeeded") + delays("Failed")
        print(f"steady: {len(steady)} runs finishing at {args.rate:.0f}/s among up to "
              f"{len(active)} active: delay API server -> forge p50 "
              f"{statistics.median(steady) * 1000:.0f} ms, p99 "
              f"{_percentile(steady, 0.99) * 1000:.0f} ms, max {max(steady) * 1000:.0f} ms")
        cpu = _cpu_seconds(pid) - cpu_before
        print(f"controller CPU: {cpu:.1f}s for {len(burst) + len(steady)} reports "
              f"({cpu / max(1, len(burst) + len(steady)) * 1000:.1f} ms each); "
              f"machine has {os.cpu_count()} CPUs shared with etcd, the API server and the "
              "fake forge")
        print(f"controller RSS with {len(active)} runs: {_rss_megabytes(pid):.0f} MB")
        if args.profile is not None:
            print(f"controller profile, burst and steady phases ({args.profile}):")
            for line in summary(args.profile):
                print(f"  {line}")

        more = args.present - len(active)
        started = time.monotonic()
        # What the controller writes once the run's and its one job's final reports were
        # acknowledged (every mode reports each job too): a restart has nothing to send.
        done_memory = (Memory()
                       .with_acknowledged(RUN_REPORT, Conclusion.SUCCESS, report_id=None)
                       .with_acknowledged(job_key("build"), Conclusion.SUCCESS, report_id=None)
                       .dumps())
        list(pool.map(lambda index: _finished_run(kube, index, done_memory, signing),
                      range(len(active), len(active) + more)))
        print(f"created {more} finished, reported runs in {time.monotonic() - started:.1f}s")
        raw_seconds, raw_runs = _raw_streamed_list(kube)
        page_size = WatchSettings().page_size  # the controller's default, where it pages
        paged_seconds, _ = _raw_list(kube, page_size)
        print(f"raw list of the {raw_runs} runs, streamed as the controller's watch asks for "
              f"it (one client, each event parsed, nothing kept): {raw_seconds:.2f}s; in "
              f"pages of {page_size}, as from an API server that does not stream lists: "
              f"{paged_seconds:.2f}s")
        posted_before_restart = len(forge.requests)
        controller.stop()
        began = time.monotonic()
        controller.start()
        assert controller.component is not None and controller.component.process is not None
        restart_profile = (args.profile.with_name(f"{args.profile.name}.restart")
                           if args.profile is not None else None)
        with sampled(controller.component.process.pid, restart_profile):
            wait_until(lambda: _resumed_after(controller) is not None, what="resumed",
                       timeout=900, watching=controller.watching(), interval=0.2)
        resumed = _resumed_after(controller)
        assert resumed is not None
        print(f"restart with {resumed['runs']} runs present: first list "
              f"{resumed['listed_seconds']:.2f}s, every run looked at "
              f"{resumed['resumed_seconds']:.2f}s after the watch started; "
              f"{time.monotonic() - began:.1f}s from process start (incl. Python imports)")
        print(f"controller RSS with {resumed['runs']} runs: "
              f"{_rss_megabytes(controller.component.process.pid):.0f} MB; the same imports "
              f"in a bare process: {_imports_megabytes(CONTROLLER_IMPORTS):.0f} MB, of which "
              f"the libraries alone: {_imports_megabytes(LIBRARY_IMPORTS):.0f} MB")
        # The API server's own speed moves from minute to minute (the paged list just before
        # grows its heap): the peer list again, right after the restart, brackets it.
        after_seconds, _ = _raw_streamed_list(kube)
        print(f"raw streamed list again, right after the restart: {after_seconds:.2f}s")
        if restart_profile is not None:
            print(f"controller profile, restart to resumed ({restart_profile}):")
            for line in summary(restart_profile):
                print(f"  {line}")
        # Counted from the restart: before it, each run's and each job's statuses were posted
        # (queued, running, final), a number the first phases do not need to predict.
        print(f"statuses posted on restart: {len(forge.requests) - posted_before_restart} "
              "(expected 0)")
        controller.stop()
        forge.assert_no_violations()
    pool.shutdown()


# What a running controller has imported (the Kubernetes client is imported when it first
# connects), and the libraries among them: the floor under its RSS that no run adds to.
CONTROLLER_IMPORTS = ("ci.controller.app", "kubernetes.client", "kubernetes.config")
LIBRARY_IMPORTS = ("kubernetes.client", "kubernetes.config", "httpx", "pydantic", "structlog",
                   "yaml", "prometheus_client", "cronsim")


def _imports_megabytes(modules: tuple[str, ...]) -> float:
    """RSS of a fresh Python process once it has imported `modules`, and nothing else."""
    script = (f"import {', '.join(modules)}\n"
              "print(next(line.split()[1] for line in open('/proc/self/status')"
              " if line.startswith('VmRSS:')))")
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return int(found.stdout.split()[-1]) / 1024


def _raw_streamed_list(kube: Kube) -> tuple[float, int]:
    """Seconds to stream every Ferry run in the bench namespace (`sendInitialEvents`, as
    `ci.kube.watching` asks), parsing each event, and how many: the least a restarted
    controller's first list can take on this API server."""
    query = streamed_list_query(timeout_seconds=600, label_selector=labels.MANAGED_SELECTOR)
    started = time.monotonic()
    response = plain.send(kube.api_client, "GET", PIPELINE_RUN.collection(NAMESPACE),
                          query=query, timeout=(10, 300)).response
    count = 0
    try:
        for line in whole_lines(response.stream(amt=None, decode_content=True)):
            event = orjson.loads(line)
            if event["type"] == "ADDED":
                count += 1
            elif event["type"] == "BOOKMARK" and ends_initial_events(event["object"]):
                return time.monotonic() - started, count
        raise RuntimeError("the stream ended before its list did")
    finally:
        response.close()
        response.release_conn()


def _raw_list(kube: Kube, page_size: int) -> tuple[float, int]:
    """Seconds to page through every Ferry run in the bench namespace, and how many: what
    the controller's first list takes from an API server that does not stream lists."""
    path = f"/apis/{PIPELINE_RUN.api_version}/namespaces/{NAMESPACE}/{PIPELINE_RUN.plural}"
    started = time.monotonic()
    count, token = 0, ""
    while True:
        query = {"limit": str(page_size), "labelSelector": labels.MANAGED_SELECTOR}
        if token:
            query["continue"] = token
        page = kube.get(path, **query)
        count += len(page.get("items") or ())
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return time.monotonic() - started, count


def _resumed_after(process: ControllerProcess) -> dict[str, Any] | None:
    path = process.log_path
    if not path.is_file():
        return None
    for line in path.read_text(errors="replace").splitlines():
        if '"resumed"' in line:
            entry: dict[str, Any] = json.loads(line)
            return entry
    return None


def _signing(kube: Kube) -> tuple[dict[str, Any], BindingKeys]:
    """The Repository and key runs are signed for, as the receiver signs them: read once."""
    repository = kube.get(f"/apis/ferry.dev/v1alpha1/namespaces/{NAMESPACE}/repositories/widget")
    return repository, cluster_keys(kube, NAMESPACE)


def _finished_run(kube: Kube, index: int, memory: str,
                  signing: tuple[dict[str, Any], BindingKeys]) -> None:
    name = f"done-{index:05d}"
    run = bound(ferry_run(NAMESPACE, name, sha=sha_for(index), pending=False), *signing)
    run["metadata"]["annotations"]["ferry.dev/reported"] = memory
    # A run Tekton never sees (no Tekton here): given a final status straight away.
    kube.create(run)
    set_condition(kube, NAMESPACE, name, "True", "Succeeded", until_stable=False)


if __name__ == "__main__":
    raise SystemExit(main())
