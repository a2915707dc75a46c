"""The step-log archive: throughput, delay from a step's end to its log archived, memory on a
large log, and time to first byte with many archived runs, on both stores.

    python3 -m bench.archive [--store directory|s3|both] [--megabytes N] [--runs N]

The S3 store runs against the real S3-compatible server of the test suite (rclone serve s3,
built by tests/s3/build), on this machine's loopback. Figures, side by side:

- archive throughput (MB/s of step output masked, gzipped and stored), one 256 MB log, next to
  `gzip -1`-level zlib alone on the same bytes (the physical limit of this design on one core);
- delay from a step's end to its log archived (p50, p99), 100 steps of 1 MB ending at once,
  archived by 8 threads; and the same through the controller's path (`ci.controller.
  archiving.Archiver` behind its own keyed queue, 100 runs of one step each ending at once,
  the archive's default 8 workers), with the API server's `pods/log` replaced by an
  in-process stream of the same bytes;
- peak Python memory while archiving the large log (flat: a chunk plus the spool bound);
- time to first byte of a step log with `--runs` archived runs in the store.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import secrets
import socket
import statistics
import subprocess
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import boto3
from botocore.config import Config

from ci.archive.directory import DirectoryStore
from ci.archive.layout import StepKey
from ci.archive.s3 import S3Settings, S3Store
from ci.archive.steps import StepDetails, archive_step, read_log
from ci.archive.store import LogStore
from ci.logs import configure
from ci.masking import Masker

REPO = Path(__file__).resolve().parents[1]
LINE = b"2026-12-02T08:00:00Z test_module.py::test_case PASSED [ 42%] some ordinary output\n"
SECRET = "ghp_" + secrets.token_hex(18)


def chunks(megabytes: int) -> Iterator[bytes]:
    block = LINE * (1024 * 1024 // len(LINE))
    for _ in range(megabytes):
        yield block


def key(run: str, step: str = "test") -> StepKey:
    return StepKey(namespace="bench", repository="app", run=run, job="build", step=step)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def start_s3(root: Path) -> tuple[subprocess.Popen[bytes], S3Store]:
    binary = os.environ.get("FERRY_S3_BIN") or subprocess.run(
        [str(REPO / "tests/s3/build")], capture_output=True, text=True, check=True
    ).stdout.strip().splitlines()[-1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    access, secret = "bench", secrets.token_hex(16)
    process = subprocess.Popen([binary, "serve", "s3", "--config", "/dev/null", "--addr",
                                f"127.0.0.1:{port}", "--auth-key", f"{access},{secret}",
                                str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=access, aws_secret_access_key=secret,
                          config=Config(signature_version="s3v4",
                                        s3={"addressing_style": "path"}))
    for _ in range(100):
        try:
            client.create_bucket(Bucket="logs")
            break
        except Exception:
            time.sleep(0.1)
    return process, S3Store(S3Settings(endpoint_url=endpoint, bucket="logs",
                                       access_key_id=access, secret_access_key=secret))


def bench(name: str, store: LogStore, *, megabytes: int, runs: int) -> None:
    masker = Masker([SECRET])
    started = time.perf_counter()
    archive_step(store, key=key("large"), chunks=chunks(megabytes), masker=masker,
                 details=StepDetails(), max_bytes=(megabytes + 1) * 1024 * 1024)
    seconds = time.perf_counter() - started
    compressor = zlib.compressobj(level=9, wbits=16 + zlib.MAX_WBITS)
    started = time.perf_counter()
    for block in chunks(megabytes):
        compressor.compress(block)
    compressor.flush()
    zlib_seconds = time.perf_counter() - started
    print(f"[{name}] throughput: {megabytes / seconds:7.1f} MB/s archived "
          f"(gzip alone {megabytes / zlib_seconds:.1f} MB/s; ratio {zlib_seconds / seconds:.2f})")

    tracemalloc.start()
    archive_step(store, key=key("memory"), chunks=chunks(min(megabytes, 128)), masker=masker,
                 details=StepDetails())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"[{name}] peak Python memory archiving {min(megabytes, 128)} MB: {peak / 1e6:.1f} MB")

    ended = time.perf_counter()
    delays: list[float] = []

    def one(number: int) -> None:
        archive_step(store, key=key(f"burst-{number}"), chunks=chunks(1), masker=masker,
                     details=StepDetails())
        delays.append(time.perf_counter() - ended)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(100)))
    print(f"[{name}] 100 steps ending at once: archived p50 {percentile(delays, 0.5):.2f} s, "
          f"p99 {percentile(delays, 0.99):.2f} s")
    bench_controller_path(name, store)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: archive_step(store, key=key(f"run-{n}"), chunks=[LINE * 20],
                                             masker=masker, details=StepDetails()),
                      range(runs)))
    firsts: list[float] = []
    for number in range(0, runs, max(1, runs // 50)):
        started = time.perf_counter()
        stream = read_log(store, key(f"run-{number}"))
        assert stream is not None
        next(stream)
        firsts.append(time.perf_counter() - started)
        stream.close()
    print(f"[{name}] time to first byte with {runs} runs archived: "
          f"p50 {statistics.median(firsts) * 1000:.1f} ms, "
          f"p99 {percentile(firsts, 0.99) * 1000:.1f} ms")


def bench_controller_path(name: str, store: LogStore, *, steps: int = 100) -> None:
    """100 TaskRuns' steps end at once; the delay until each record is in the store."""
    import asyncio  # noqa: PLC0415

    from ci.controller.archiving import Archiver  # noqa: PLC0415
    from ci.controller.leadership import Leadership  # noqa: PLC0415
    from ci.controller.metrics import ControllerMetrics  # noqa: PLC0415
    from ci.controller.queueing import KeyedQueue  # noqa: PLC0415
    from ci.controller.runs import RunSnapshot, TaskRunSnapshot  # noqa: PLC0415
    from ci.controller.store import Observation, RunStore  # noqa: PLC0415
    from ci.kube.credentials import CredentialsCache  # noqa: PLC0415
    from ci.kube.repositories import RepositoryIndex  # noqa: PLC0415
    from tests.defaults import archive_defaults, controller_defaults  # noqa: PLC0415

    url = "https://github.com/bench/app"
    archived: dict[str, float] = {}

    class Timed:
        """The store, noting when each record (written after its log) lands."""

        def __getattr__(self, attribute: str) -> object:
            return getattr(store, attribute)

        def put(self, object_name: str, data: object) -> None:
            store.put(object_name, data)  # type: ignore[arg-type]
            if object_name.endswith(".json"):
                archived[object_name] = time.perf_counter()

    def run_object(number: int) -> dict[str, object]:
        return {"metadata": {"name": f"ctl-{number}", "namespace": "bench", "uid": f"u{number}",
                             "resourceVersion": "1", "creationTimestamp": "2026-12-02T08:00:00Z",
                             "annotations": {"ferry.dev/repository-url": url}},
                "spec": {"pipelineSpec": {"tasks": [{"name": "build", "taskSpec": {
                    "steps": [{"name": "test", "image": "alpine"}]}}]}},
                "status": {"conditions": [{"type": "Succeeded", "status": "Unknown",
                                           "reason": "Running"}]}}

    def task_run_object(number: int) -> dict[str, object]:
        return {"metadata": {"name": f"ctl-{number}-build", "namespace": "bench",
                             "labels": {"tekton.dev/pipelineRun": f"ctl-{number}",
                                        "tekton.dev/pipelineTask": "build"}},
                "status": {"podName": f"ctl-{number}-pod",
                           "conditions": [{"type": "Succeeded", "status": "True",
                                           "reason": "Succeeded"}],
                           "steps": [{"name": "test", "container": "step-test",
                                      "terminated": {"exitCode": 0}}]}}

    def stream(namespace: str, pod: str, container: str) -> Iterator[bytes]:
        yield from chunks(1)

    async def measure() -> list[float]:
        runs = RunStore(lambda observations: None)
        repositories = RepositoryIndex()
        repositories.on_relist([{"metadata": {"name": "app", "namespace": "bench", "uid": "r"},
                                 "spec": {"forge": "github", "url": url,
                                          "secretRef": {"name": "creds"}}}])
        settings = archive_defaults(Path("unused"))
        archiver = Archiver(
            api=None, store=runs, repositories=repositories,
            credentials=CredentialsCache(lambda namespace, secret: {}),
            read_secret=lambda namespace, secret: {"token": SECRET}, stream_log=stream,
            archive=Timed(), settings=settings,  # type: ignore[arg-type]
            leadership=Leadership(None, identity="bench", settings=controller_defaults().leader),
            metrics=ControllerMetrics(), on_archived=lambda run, repository: None,
            request_timeout=10.0)
        queue: KeyedQueue[tuple[str, str], Observation] = KeyedQueue(
            archiver.handle, workers=settings.workers * 4)
        for number in range(steps):
            runs.remember(RunSnapshot.of(run_object(number)))
        ended = time.perf_counter()
        for number in range(steps):
            runs.update_task_run(TaskRunSnapshot.of(task_run_object(number)), deleted=False)
            queue.submit(("bench", f"ctl-{number}"), Observation(None, time.time()))
        await queue.idle()
        archiver.close()
        return [moment - ended for moment in archived.values()]

    delays = asyncio.run(measure())
    assert len(delays) == steps, len(delays)
    print(f"[{name}] {steps} steps ending at once, through the controller's archiver "
          f"(8 workers): archived p50 {percentile(delays, 0.5):.2f} s, "
          f"p99 {percentile(delays, 0.99):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["directory", "s3", "both"], default="both")
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    configure(level="warning")  # the archiver's per-step lines would drown the figures
    with tempfile.TemporaryDirectory() as scratch:
        if args.store in ("directory", "both"):
            bench("directory", DirectoryStore(Path(scratch, "logs")), megabytes=args.megabytes,
                  runs=args.runs)
        if args.store in ("s3", "both"):
            root = Path(scratch, "s3")
            root.mkdir()
            process, store = start_s3(root)
            try:
                bench("s3", store, megabytes=args.megabytes, runs=args.runs)
            finally:
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
