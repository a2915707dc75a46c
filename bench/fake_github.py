"""What GitHub's whole REST description costs the fake GitHub in tests.

    python3 -m bench.fake_github [--requests N]

Prints the time to load the description (once per test session), to build openapi-core's
object without and with its check of the description itself (the fake skips the check),
and the median time to validate one request and one answer against it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from openapi_core import Config, OpenAPI

from ci.forges.types import ForgeKind
from tests.fakeforge import github_objects
from tests.fakeforge.descriptions import GITHUB_DESCRIPTION, description, description_document
from tests.fakeforge.validation import problems, response_problems

G = ForgeKind.GITHUB
HEADERS = [("content-type", "application/json"), ("authorization", "token t")]


def _seconds(started: float) -> str:
    return f"{time.perf_counter() - started:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--check-description", action="store_true",
                        help="also time openapi-core's check of the description (~45 s)")
    arguments = parser.parse_args()
    started = time.perf_counter()
    json.loads(GITHUB_DESCRIPTION.read_bytes())
    print(f"json.loads of {GITHUB_DESCRIPTION.name}: {_seconds(started)}")
    started = time.perf_counter()
    description(G)
    print(f"description(GITHUB), first call (load + adjust + build): {_seconds(started)}")
    if arguments.check_description:
        started = time.perf_counter()
        OpenAPI.from_dict(description_document(G))
        print(f"building with openapi-core's check of the description: {_seconds(started)}")
    else:
        OpenAPI.from_dict(description_document(G), config=Config(spec_validator_cls=None))
    run = github_objects.check_run("acme/app", 7, {"name": "ferry", "head_sha": "a" * 40},
                                   app_id=1, now="2026-01-01T00:00:00Z")
    request_times, answer_times = [], []
    for number in range(arguments.requests):
        path = f"/repos/acme/app/statuses/{number:040}"
        started = time.perf_counter()
        problems(G, method="POST", raw_path=path, query=[], headers=HEADERS,
                 body=b'{"state": "success", "context": "ferry"}')
        request_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        response_problems(G, method="PATCH", raw_path="/repos/acme/app/check-runs/7",
                          query=[], headers=HEADERS, body=b"{}", status_code=200,
                          response_headers={"content-type": "application/json"},
                          response_body=json.dumps(run).encode())
        answer_times.append(time.perf_counter() - started)
    print(f"validate one request: median {statistics.median(request_times) * 1000:.1f} ms")
    print(f"validate one check-run answer: median {statistics.median(answer_times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
