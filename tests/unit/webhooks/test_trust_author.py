"""Trust is decided on the pull request's author, never on whoever sent the event.

Each case is a published payload with only the actor changed (and the head moved to a fork):
a maintainer who reopens, labels or syncs a fork's pull request must not lend it their
access, and a stranger who reopens a maintainer's pull request must not take it away.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ci.forges.types import ForgeKind
from tests.fakeforge import FakeForge
from tests.unit.webhooks.conftest import Serve
from tests.unit.webhooks.fakes import (
    SPEC,
    RecordingBackend,
    contract,
    encode,
    github_headers,
    local_repository,
    signed_headers,
)

GITHUB_REPOSITORY = "Codertocat/Hello-World"
GITLAB_URL = "http://example.com/gitlabhq/gitlab-test"
GITLAB_PROJECT = "gitlabhq/gitlab-test"
MAINTAINER, MAINTAINER_ID = "maintainer", 7
FORKER_ID = 51  # the published merge request's `author_id`


def _github(name: str, *, sender: str) -> dict[str, Any]:
    payload = copy.deepcopy(contract(ForgeKind.GITHUB, name))
    head = payload["pull_request"]["head"]
    head["repo"] = dict(head["repo"], full_name="mallory/Hello-World")
    payload["pull_request"]["user"] = dict(payload["pull_request"]["user"], login="mallory")
    payload["sender"] = dict(payload["sender"], login=sender)
    return payload


def _post_github(client: Any, payload: dict[str, Any]) -> Any:
    body = encode(payload)
    headers = signed_headers(ForgeKind.GITHUB, body, github_headers("pull_request"))
    return client.post("/hooks", content=body, headers=headers)


@pytest.mark.parametrize(
    "name", ["pull_request.reopened.json", "pull_request.synchronize.json",
             "pull_request.opened.json"],
)
def test_github_a_maintainer_acting_on_a_fork_pull_request_lends_it_no_secrets(
    serve: Serve, forge: FakeForge, backend: RecordingBackend, name: str
) -> None:
    payload = _github(name, sender=MAINTAINER)
    forge.add_file(GITHUB_REPOSITORY, payload["pull_request"]["head"]["sha"], ".ci.yaml", SPEC)
    forge.set_permission(GITHUB_REPOSITORY, MAINTAINER, "admin")

    # Untrusted code may run on the host here, so the run (without secrets) shows the decision.
    response = _post_github(serve(local={"untrusted_on_host": True}), payload)

    assert response.status_code == 202, response.text
    assert "mallory has no write access" in response.json()["trust"]
    [request] = backend.requests
    assert all(not job.secrets for job in request.plan.all_jobs)


def test_github_a_stranger_reopening_a_maintainers_fork_pull_request_keeps_it_trusted(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = _github("pull_request.reopened.json", sender="stranger")
    payload["pull_request"]["user"]["login"] = MAINTAINER
    forge.add_file(GITHUB_REPOSITORY, payload["pull_request"]["head"]["sha"], ".ci.yaml", SPEC)
    forge.set_permission(GITHUB_REPOSITORY, MAINTAINER, "write")

    assert _post_github(serve(), payload).status_code == 202
    [request] = backend.requests
    assert request.plan.jobs[0].secrets


def _gitlab(action: str, *, actor: tuple[str, int], author_id: int) -> dict[str, Any]:
    payload = copy.deepcopy(contract(ForgeKind.GITLAB, "merge_request.json"))
    attributes = payload["object_attributes"]
    attributes["action"] = action
    attributes["source_project_id"] = 99  # a fork's merge request
    attributes["author_id"] = author_id
    payload["user"] = dict(payload["user"], username=actor[0], id=actor[1])
    return payload


def _serve_gitlab(serve: Serve) -> tuple[Any, FakeForge]:
    fake = FakeForge(ForgeKind.GITLAB)
    client = serve([local_repository(ForgeKind.GITLAB, GITLAB_URL)], fake=fake,
                   local={"untrusted_on_host": True})
    return client, fake


def _post_gitlab(client: Any, payload: dict[str, Any]) -> Any:
    body = encode(payload)
    headers = signed_headers(ForgeKind.GITLAB, body, {
        "X-Gitlab-Event": "Merge Request Hook", "Content-Type": "application/json"})
    return client.post("/hooks", content=body, headers=headers)


@pytest.mark.parametrize("action", ["reopen", "open"])
def test_gitlab_a_maintainer_reopening_a_fork_merge_request_lends_it_no_secrets(
    serve: Serve, backend: RecordingBackend, action: str
) -> None:
    client, fake = _serve_gitlab(serve)
    payload = _gitlab(action, actor=(MAINTAINER, MAINTAINER_ID), author_id=FORKER_ID)
    fake.add_file(GITLAB_PROJECT, payload["object_attributes"]["last_commit"]["id"],
                  ".ci.yaml", SPEC)
    fake.set_permission(GITLAB_PROJECT, MAINTAINER, 40, user_id=MAINTAINER_ID)

    response = _post_gitlab(client, payload)

    assert response.status_code == 202, response.text
    assert f"user {FORKER_ID}" in response.json()["trust"]
    [request] = backend.requests
    assert all(not job.secrets for job in request.plan.all_jobs)
    fake.assert_no_violations()


def test_gitlab_a_developers_fork_merge_request_reopened_by_a_stranger_stays_trusted(
    serve: Serve, backend: RecordingBackend
) -> None:
    client, fake = _serve_gitlab(serve)
    payload = _gitlab("reopen", actor=("stranger", 1234), author_id=MAINTAINER_ID)
    fake.add_file(GITLAB_PROJECT, payload["object_attributes"]["last_commit"]["id"],
                  ".ci.yaml", SPEC)
    fake.set_permission(GITLAB_PROJECT, MAINTAINER, 30, user_id=MAINTAINER_ID)

    assert _post_gitlab(client, payload).status_code == 202
    [request] = backend.requests
    assert request.plan.jobs[0].secrets
    fake.assert_no_violations()
