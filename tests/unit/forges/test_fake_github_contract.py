"""The fake GitHub holds to GitHub's whole REST description, both ways.

Requests are validated against contracts/github/full/api.github.com.json (all 811 paths, not
a subset), and the fake's own answers against the description's response schemas: a fake
that answered what GitHub never would would let a client bug through.
"""

from __future__ import annotations

import json
import time

from ci.forges.types import ForgeKind
from tests.fakeforge import github_objects
from tests.fakeforge.descriptions import description, description_document
from tests.fakeforge.validation import problems, response_problems

G = ForgeKind.GITHUB
JSON = [("content-type", "application/json"), ("authorization", "token test-token")]
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def test_the_whole_description_is_loaded_once_per_session() -> None:
    assert len(description_document(G)["paths"]) == 811
    assert description(G) is description(G)


def test_a_call_outside_the_old_subset_is_validated_too() -> None:
    listing = f"/repos/acme/app/commits/{SHA}/check-runs"
    ok = problems(G, method="GET", raw_path=listing, query=[("filter", "all")], headers=JSON,
                  body=b"")
    wrong = problems(G, method="GET", raw_path=listing, query=[("filter", "newest")],
                     headers=JSON, body=b"")
    assert ok is None
    assert wrong is not None and "filter" in wrong


def test_an_undescribed_path_is_a_violation() -> None:
    found = problems(G, method="GET", raw_path="/repos/acme/app/no-such-thing", query=[],
                     headers=JSON, body=b"")
    assert found is not None and "PathNotFound" in found


def _answer(path: str, method: str, status_code: int, answer: object) -> str | None:
    return response_problems(
        G, method=method, raw_path=path, query=[], headers=JSON, body=b"",
        status_code=status_code, response_headers={"content-type": "application/json"},
        response_body=json.dumps(answer).encode(),
    )


def test_answers_are_checked_against_the_response_schemas() -> None:
    path = "/repos/acme/app/check-runs/7"
    run = github_objects.check_run(
        "acme/app", 7, {"name": "ferry", "head_sha": SHA, "status": "queued"}, app_id=1,
        now="2026-01-01T00:00:00Z",
    )
    assert _answer(path, "GET", 200, run) is None
    # A queued run's conclusion is null: accepted, as GitHub answers it.
    assert run["conclusion"] is None
    without_id = {key: value for key, value in run.items() if key != "node_id"}
    found = _answer(path, "GET", 200, without_id)
    assert found is not None and "node_id" in found
    assert _answer(path, "GET", 200, {**run, "status": "finished"}) is not None


def test_an_error_answer_the_operation_does_not_list_is_not_checked() -> None:
    # GitHub answers 401 on every operation without listing it on each.
    assert _answer("/repos/acme/app/check-runs", "POST", 401, {"message": "Bad"}) is None
    # A success it does not describe is the fake's bug.
    found = _answer("/repos/acme/app/check-runs", "POST", 200, {})
    assert found is not None and "200" in found


def test_validating_against_the_whole_description_stays_quick() -> None:
    description(G)  # built already by the tests above, or now
    started = time.perf_counter()
    for number in range(100):
        found = problems(
            G, method="POST", raw_path=f"/repos/acme/app/statuses/{number:040}", query=[],
            headers=JSON, body=b'{"state": "success", "context": "ferry"}',
        )
        assert found is None
    # About 10 ms each on a shared core; the bound only catches a pathological slowdown.
    assert time.perf_counter() - started < 20
