"""Time to first byte of a step log from the archive through the read API, with many
archived runs (issue #12's figure), over HTTP on loopback.

    python3 -m bench.read_api [--runs 10000] [--reads 200]   (from the repository root: a
    script in bench/ would import bench/webhooks.py for the `webhooks` package)

A directory store is filled with `--runs` archived runs (one step each, pruned from the
cluster: only the archive has them), then the receiver's read API (`webhooks.api`) is served
by uvicorn and each read is one `GET .../log`, timed to the first byte of the body. The
reviews answer from memory (after the first request of a token the real ones are cached
too), so the figure is the API's and the store's, not the API server's; a plain read of the
store (`read_log`) is printed beside it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

import httpx
import uvicorn
from fastapi import FastAPI

from ci.archive.directory import DirectoryStore
from ci.archive.layout import StepKey
from ci.archive.steps import StepDetails, archive_step, read_log
from ci.kube.pipeline_runs import PipelineRuns
from ci.kube.reviews import Identity, Reviews
from ci.kube.step_logs import StepLogs
from ci.masking import Masker
from webhooks.api import routes
from webhooks.api.service import ReadService

LINE = b"2026-12-02T08:00:00Z test_module.py::test_case PASSED [ 42%] some ordinary output\n"
NAMESPACE, REPOSITORY = "team", "app"


class _NoRuns:
    """The cluster has pruned every run: only the archive answers."""

    def get(self, namespace: str, name: str) -> None:
        return None


class _Runtime:
    def __init__(self, read: ReadService) -> None:
        self.read = read


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def key(number: int) -> StepKey:
    return StepKey(namespace=NAMESPACE, repository=REPOSITORY, run=f"run-{number}", job="build",
                   step="test")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = DirectoryStore(Path(scratch))
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda n: archive_step(store, key=key(n), chunks=[LINE * 200],
                                                 masker=Masker(), details=StepDetails()),
                          range(args.runs)))
        print(f"archived {args.runs} runs in {time.perf_counter() - started:.1f} s")
        reader = Identity(username="reader")
        service = ReadService(
            reviews=Reviews(review_token=lambda _token: reader,
                            review_access=lambda _who, _namespace: True),
            repositories=lambda: (),
            runs=cast(PipelineRuns, _NoRuns()),
            step_logs=cast(StepLogs, None),
            archive=store,
            masker_for=lambda _run, _repository: Masker(),
        )
        app = FastAPI()
        app.state.runtime = _Runtime(service)
        app.include_router(routes.router)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        picks = random.Random(12).sample(range(args.runs), min(args.reads, args.runs))
        through_api: list[float] = []
        direct: list[float] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1",
                          headers={"Authorization": "Bearer bench"}) as http:
            for number in picks:
                path = (f"/namespaces/{NAMESPACE}/repositories/{REPOSITORY}/runs/run-{number}"
                        "/jobs/build/steps/test/log")
                began = time.perf_counter()
                with http.stream("GET", path) as response:
                    first = next(response.iter_raw())
                    through_api.append(time.perf_counter() - began)
                    assert response.status_code == 200 and first
                began = time.perf_counter()
                stream: Any = read_log(store, key(number))
                next(stream)
                direct.append(time.perf_counter() - began)
                stream.close()
        server.should_exit = True
        thread.join(timeout=10)
    print(f"time to first byte of a step log, {args.runs} runs archived (directory store): "
          f"read API over HTTP p50 {statistics.median(through_api) * 1000:.1f} ms, "
          f"p99 {percentile(through_api, 0.99) * 1000:.1f} ms; "
          f"the store alone p50 {statistics.median(direct) * 1000:.2f} ms, "
          f"p99 {percentile(direct, 0.99) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
