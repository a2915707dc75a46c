"""Every example GitHub's webhook documentation publishes, through the real receiver.

contracts/github/full/webhooks-examples.json holds every published example payload of every
event (@octokit/webhooks-examples). Each example of the events Ferry subscribes to is signed
and posted to the real app, with a fake GitHub that validates every call the receiver makes
against GitHub's whole REST description. None may get a 5xx, and each must get the outcome
`EXPECTED` names for it.

`EXPECTED` is the one table to change when the receiver's behaviour changes on purpose: one
row per example, keyed `event[index].action` (the index into that event's published list).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from ci.forges.types import ForgeKind
from tests.contracts import CONTRACTS
from tests.fakeforge import FakeForge
from tests.unit.webhooks.conftest import Serve
from tests.unit.webhooks.fakes import (
    SPEC,
    RecordingBackend,
    encode,
    github_headers,
    local_repository,
    signed_headers,
)

EXAMPLES_FILE = CONTRACTS / "github" / "full" / "webhooks-examples.json"
EVENTS = ("push", "pull_request", "issue_comment", "check_run", "check_suite", "ping",
          "installation")

# What the receiver does with each published example, in the words of `outcome`:
#   run            202, a run submitted, at the commit the payload names (`commit_of`)
#   closed         202, the pull request's runs cancelled
#   ignored        202, "ignored: ..." and nothing run
#   skipped        202, another reason nothing ran ("no spec", "waiting", ...)
#   ping           200, pong
#   no-repository  400: nothing names a Repository, so there is no secret to verify with
EXPECTED: Mapping[str, str] = {
    "push[0].-": "run",  # tag created: runs the tagged commit
    "push[1].-": "ignored",  # tag deleted
    "push[2].-": "ignored",
    "push[3].-": "ignored",
    "push[4].-": "run",  # new branch
    "push[5].-": "run",
    "push[6].-": "ignored",
    "pull_request[0].opened": "run",
    "pull_request[1].assigned": "ignored",
    "pull_request[2].assigned": "ignored",
    "pull_request[3].closed": "closed",
    "pull_request[4].closed": "closed",
    "pull_request[5].converted_to_draft": "ignored",
    "pull_request[6].converted_to_draft": "ignored",
    "pull_request[7].converted_to_draft": "ignored",
    "pull_request[8].labeled": "ignored",
    "pull_request[9].labeled": "ignored",
    "pull_request[10].locked": "ignored",
    "pull_request[11].locked": "ignored",
    "pull_request[12].opened": "run",
    "pull_request[13].opened": "run",
    "pull_request[14].opened": "run",
    "pull_request[15].ready_for_review": "ignored",
    "pull_request[16].ready_for_review": "ignored",
    "pull_request[17].ready_for_review": "ignored",
    "pull_request[18].reopened": "run",
    "pull_request[19].reopened": "run",
    "pull_request[20].review_request_removed": "ignored",
    "pull_request[21].review_requested": "ignored",
    "pull_request[22].synchronize": "run",
    "pull_request[23].unassigned": "ignored",
    "pull_request[24].unassigned": "ignored",
    "pull_request[25].unlabeled": "ignored",
    "pull_request[26].unlabeled": "ignored",
    "pull_request[27].unlocked": "ignored",
    "pull_request[28].unlocked": "ignored",
    "issue_comment[0].created": "ignored",  # every published example is a comment on a plain issue
    "issue_comment[1].created": "ignored",
    "issue_comment[2].created": "ignored",
    "issue_comment[3].created": "ignored",
    "issue_comment[4].created": "ignored",
    "issue_comment[5].deleted": "ignored",
    "issue_comment[6].deleted": "ignored",
    "issue_comment[7].edited": "ignored",
    "issue_comment[8].edited": "ignored",
    "check_run[0].created": "ignored",  # only `rerequested` starts pipelines
    "check_run[1].completed": "ignored",
    "check_run[2].completed": "ignored",
    "check_run[3].completed": "ignored",
    "check_run[4].created": "ignored",
    "check_run[5].created": "ignored",
    "check_run[6].requested_action": "ignored",
    "check_run[7].rerequested": "ignored",  # another App's check run (no Ferry external_id)
    "check_run[8].rerequested": "ignored",
    "check_suite[0].completed": "ignored",
    "check_suite[1].completed": "ignored",
    "check_suite[2].completed": "ignored",
    "check_suite[3].completed": "ignored",
    "check_suite[4].requested": "ignored",  # GitHub's own on a push, which the push ran
    "check_suite[5].requested": "ignored",
    "check_suite[6].requested": "ignored",
    # "Re-run all checks" on a commit with no run yet: pull request 2 at its head runs whole.
    "check_suite[7].rerequested": "run",
    "check_suite[8].rerequested": "run",
    "ping[0].-": "ping",
    "ping[1].-": "ping",
    "ping[2].-": "ping",
    "ping[3].-": "no-repository",  # App ping: no repository, no secret
    "installation[0].deleted": "no-repository",  # installation events name no repository
    "installation[1].created": "no-repository",
    "installation[2].created": "no-repository",
    "installation[3].deleted": "no-repository",
    "installation[4].new_permissions_accepted": "no-repository",
    "installation[5].suspend": "no-repository",
    "installation[6].unsuspend": "no-repository",
}


@cache
def examples() -> Mapping[str, tuple[str, Mapping[str, Any]]]:
    """Every published example of `EVENTS`: key -> (event, payload)."""
    found: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for entry in json.loads(EXAMPLES_FILE.read_bytes()):
        if entry["name"] not in EVENTS:
            continue
        for index, payload in enumerate(entry["examples"]):
            key = f"{entry['name']}[{index}].{payload.get('action', '-')}"
            found[key] = (entry["name"], payload)
    return found


def outcome(status_code: int, body: Mapping[str, Any]) -> str:
    """The receiver's answer as one word, for the table."""
    if status_code == 200 and "pong" in body:
        return "ping"
    if status_code == 202 and body.get("pipelineRuns"):
        return "run"
    skipped = str(body.get("skipped", ""))
    if status_code == 202 and skipped.startswith("pull request") and "closed" in skipped:
        return "closed"
    if status_code == 202 and skipped.startswith("ignored"):
        return "ignored"
    if status_code == 202 and skipped:
        return "skipped"
    if status_code == 400 and "names no repository" in str(body.get("error", "")):
        return "no-repository"
    return f"http-{status_code}"


def _repositories() -> list[object]:
    urls = {
        payload["repository"]["html_url"]
        for _, payload in examples().values()
        if isinstance(payload.get("repository"), dict)
    }
    return [local_repository(ForgeKind.GITHUB, url) for url in sorted(urls)]


def _fake() -> FakeForge:
    """Every example's repository has the spec; a check suite's pull requests are open at its
    head, and whoever asks for its re-run has write access (as only such a user can)."""
    fake = FakeForge(ForgeKind.GITHUB)
    for event, payload in examples().values():
        repository = payload.get("repository")
        if isinstance(repository, dict):
            fake.add_file(repository["full_name"], "*", ".ci.yaml", SPEC)
        if event == "check_suite" and isinstance(repository, dict):
            suite = payload["check_suite"]
            fake.set_permission(repository["full_name"], payload["sender"]["login"], "write")
            for pull in suite["pull_requests"]:
                fake.add_pull_request(
                    repository["full_name"], pull["number"], head_sha=suite["head_sha"],
                    head_branch=pull["head"]["ref"], author="Codertocat",
                )
    return fake


def commit_of(event: str, payload: Mapping[str, Any]) -> str:
    """The commit a run of this example must build: the one the forge names."""
    if event == "pull_request":
        return str(payload["pull_request"]["head"]["sha"])
    if event == "check_suite":
        return str(payload["check_suite"]["head_sha"])
    head_commit = payload.get("head_commit") or {}
    return str(head_commit.get("id") or payload["after"])


def test_the_table_names_every_published_example() -> None:
    assert sorted(EXPECTED) == sorted(examples()), (
        "EXPECTED and the published examples differ: add or remove rows in "
        "tests/unit/webhooks/test_published_examples.py"
    )


@pytest.mark.parametrize("key", sorted(examples()))
def test_every_published_example(serve: Serve, backend: RecordingBackend, key: str) -> None:
    event, payload = examples()[key]
    fake = _fake()
    client = serve(_repositories(), fake=fake)  # type: ignore[arg-type]
    body = encode(dict(payload))
    response = client.post(
        "/hooks", content=body,
        headers=signed_headers(ForgeKind.GITHUB, body, github_headers(event, f"d-{key}")),
    )
    answer = f"{response.status_code} {response.text[:300]}"
    assert response.status_code < 500, f"{key}: a server error for a published example: {answer}"
    got = outcome(response.status_code, response.json())
    assert got == EXPECTED[key], (
        f"{key}: expected {EXPECTED[key]!r}, the receiver answered {got!r} ({answer}). If the "
        "receiver's behaviour changed on purpose, change this row of EXPECTED."
    )
    fake.assert_no_violations()
    if got == "run":
        [request] = backend.requests
        assert request.event.sha == commit_of(event, payload), f"{key}: ran the wrong commit"
    else:
        assert backend.requests == [], f"{key}: {got!r} but a run was submitted"
    if got == "closed":
        assert backend.closed == [(backend.closed[0][0], payload["number"])]
