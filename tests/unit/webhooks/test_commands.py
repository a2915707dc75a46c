"""Comment commands and Re-run buttons through the real app, with GitHub's published payloads
(only the actor, the comment's text and Ferry's own check run id changed) and the fake GitHub,
which validates every call (the pull request read included) against GitHub's description."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ci.backends import PreviousRun
from ci.forges.statuses import Conclusion
from ci.forges.types import ForgeKind
from tests.fakeforge import FakeForge
from tests.unit.webhooks.conftest import Serve
from tests.unit.webhooks.fakes import (
    RecordingBackend,
    contract,
    encode,
    github_headers,
    local_repository,
    signed_headers,
)

G = ForgeKind.GITHUB
SPEC = """\
jobs:
  lint:
    image: alpine
    steps:
      - run: lint
  test:
    image: alpine
    secrets:
      API_KEY: deploy/key
    steps:
      - run: test
  deploy:
    image: alpine
    needs: [test]
    steps:
      - run: deploy
  docs:
    image: alpine
    needs: [lint]
    steps:
      - run: docs
"""
HEAD = "0123456789abcdef0123456789abcdef01234567"
MAINTAINER = "maintainer"
FAILED_TEST = {"lint": Conclusion.SUCCESS, "test": Conclusion.FAILURE,
               "deploy": Conclusion.SKIPPED, "docs": Conclusion.SUCCESS}


def comment_payload(body: str, *, author: str = MAINTAINER) -> dict[str, Any]:
    payload = contract(G, "issue_comment.created-on-pull-request.json")
    payload["comment"]["body"] = body
    payload["comment"]["user"]["login"] = author
    payload["sender"]["login"] = author
    return payload


def repository_of(payload: dict[str, Any]) -> str:
    return str(payload["repository"]["full_name"])


def start(serve: Serve, forge: FakeForge, payload: dict[str, Any], *,
          fork: bool = False, author: str = "contributor", **settings: Any) -> Any:
    """The app for the payload's repository, the pull request open on the fake GitHub at HEAD
    (from a fork, when asked), the spec at HEAD and MAINTAINER with write access."""
    name = repository_of(payload)
    forge.add_file(name, HEAD, ".ci.yaml", SPEC)
    forge.set_permission(name, MAINTAINER, "write")
    forge.add_pull_request(
        name, 2, head_sha=HEAD, head_branch="feature", author=author,
        head_repository=f"{author}/fork" if fork else None,
    )
    return serve([local_repository(G, payload["repository"]["html_url"])], **settings)


def post(client: Any, payload: dict[str, Any], event: str, delivery: str = "d-1") -> Any:
    body = encode(payload)
    return client.post("/hooks", content=body,
                       headers=signed_headers(G, body, github_headers(event, delivery)))


def previous(*, trusted: bool = True, finished: bool = True,
             jobs: dict[str, Conclusion] | None = None) -> PreviousRun:
    return PreviousRun(name="hello-0123456-run", trusted=trusted, finished=finished,
                       pull_request=2, jobs=jobs or FAILED_TEST)


def jobs_of(backend: RecordingBackend) -> dict[str, tuple[str, ...]]:
    [request] = backend.requests
    return {job.name: job.needs for job in request.plan.jobs}


def test_retest_reads_the_pull_request_and_reruns_only_the_failed_jobs_and_their_dependents(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/retest")
    client = start(serve, forge, payload)
    backend.previous[HEAD] = previous()
    response = post(client, payload, "issue_comment")
    assert response.status_code == 202, response.text
    assert backend.asked == [(HEAD, 2)]
    # `deploy` needs the failed `test`; `lint` and `docs` passed and are not run again.
    assert jobs_of(backend) == {"test": (), "deploy": ("test",)}
    [request] = backend.requests
    assert request.event.sha == HEAD and request.event.pull_request is not None
    assert request.event.pull_request.author == "contributor"
    assert request.trusted and request.plan.jobs[0].secrets
    assert response.json()["pipelineRuns"][0].startswith("retest-")
    assert [r.path for r in forge.requests if r.path.endswith("/pulls/2")] == [
        f"/repos/{repository_of(payload)}/pulls/2"
    ]


def test_retest_job_reruns_that_job_and_what_needs_it(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/retest lint\nplease")
    client = start(serve, forge, payload)
    backend.previous[HEAD] = previous()
    assert post(client, payload, "issue_comment").status_code == 202
    # `docs` needed `lint`; `test` failed but was not asked for.
    assert jobs_of(backend) == {"lint": (), "docs": ("lint",)}


def test_retest_of_an_unknown_job_runs_nothing_and_names_the_jobs(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/retest nope")
    client = start(serve, forge, payload)
    backend.previous[HEAD] = previous()
    response = post(client, payload, "issue_comment")
    assert "no job 'nope'" in response.json()["skipped"]
    assert "deploy, docs, lint, test" in response.json()["skipped"]
    assert backend.requests == []
    assert forge.statuses_for(repository_of(payload), HEAD) == []  # nothing posted


@pytest.mark.parametrize("engine", ["host", "docker"])
def test_retest_never_makes_an_untrusted_run_trusted(
    serve: Serve, forge: FakeForge, backend: RecordingBackend, tmp_path: Path, engine: str
) -> None:
    """A maintainer's /retest of a fork's secret-less run runs it again without secrets; on
    the host engine, which runs no untrusted code, it still waits for /ok-to-test."""
    payload = comment_payload("/retest")
    client_path = tmp_path / "bin"
    client_path.mkdir()
    (client_path / "docker").write_text("#!/bin/sh\nexit 1\n")
    (client_path / "docker").chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{client_path}:/usr/bin:/bin")  # where the client is looked up
        client = start(serve, forge, payload, fork=True, local={"engine": engine})
    backend.previous[HEAD] = previous(trusted=False)
    response = post(client, payload, "issue_comment")
    assert response.status_code == 202, response.text
    if engine == "host":
        assert "/ok-to-test" in response.json()["skipped"] and backend.requests == []
        return
    [request] = backend.requests
    assert request.trusted is False
    assert all(not job.secrets for job in request.plan.jobs)
    assert "without secrets" in response.json()["trust"]


def test_retest_keeps_the_trust_ok_to_test_gave(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/retest")
    client = start(serve, forge, payload, fork=True)
    backend.previous[HEAD] = previous(trusted=True)
    assert post(client, payload, "issue_comment").status_code == 202
    [request] = backend.requests
    assert request.trusted is True and request.plan.jobs[0].secrets


def test_ok_to_test_on_github_runs_the_forks_head_with_secrets(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/ok-to-test")
    client = start(serve, forge, payload, fork=True)
    response = post(client, payload, "issue_comment")
    assert response.status_code == 202, response.text
    [request] = backend.requests
    assert request.trusted is True and request.event.sha == HEAD
    assert request.event.pull_request is not None and request.event.pull_request.from_fork
    assert [job.name for job in request.plan.jobs] == ["lint", "test", "deploy", "docs"]
    assert response.json()["pipelineRuns"][0].startswith("ok-")


@pytest.mark.parametrize("command", ["/retest", "/ok-to-test", "/cancel"])
def test_commands_from_someone_without_write_access_are_ignored(
    serve: Serve, forge: FakeForge, backend: RecordingBackend, command: str
) -> None:
    payload = comment_payload(command, author="contributor")
    client = start(serve, forge, payload, fork=True)
    backend.previous[HEAD] = previous()
    response = post(client, payload, "issue_comment")
    assert "who has no write access" in response.json()["skipped"]
    assert backend.requests == [] and backend.closed == []


def test_retest_while_the_run_is_running_runs_nothing(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/retest")
    client = start(serve, forge, payload)
    backend.previous[HEAD] = previous(finished=False)
    response = post(client, payload, "issue_comment")
    assert "still running" in response.json()["skipped"]
    assert backend.requests == []


def test_retest_when_nothing_failed_runs_nothing(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/retest")
    client = start(serve, forge, payload)
    backend.previous[HEAD] = previous(jobs=dict.fromkeys(FAILED_TEST, Conclusion.SUCCESS))
    response = post(client, payload, "issue_comment")
    assert "nothing failed" in response.json()["skipped"]
    assert backend.requests == []


def test_retest_of_a_commit_that_never_ran_runs_it_whole(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/retest")
    client = start(serve, forge, payload)
    assert post(client, payload, "issue_comment").status_code == 202
    assert list(jobs_of(backend)) == ["lint", "test", "deploy", "docs"]


def test_cancel_stops_the_pull_requests_runs(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/cancel")
    client = start(serve, forge, payload)
    response = post(client, payload, "issue_comment")
    assert response.json()["cancelled"] == ["run-of-2"]
    assert backend.closed[0][1] == 2 and backend.requests == []


def test_a_command_on_a_closed_pull_request_runs_nothing(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = comment_payload("/retest")
    client = start(serve, forge, payload)
    forge.add_pull_request(repository_of(payload), 2, head_sha=HEAD, head_branch="feature",
                           author="contributor", state="closed")
    response = post(client, payload, "issue_comment")
    assert "not open" in response.json()["skipped"] and backend.requests == []


def check_run_payload(external_id: str) -> dict[str, Any]:
    payload = contract(G, "check_run.rerequested.json")
    payload["check_run"]["external_id"] = external_id
    payload["sender"]["login"] = MAINTAINER
    return payload


def test_rerun_on_a_job_check_reruns_that_job(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = check_run_payload("5f1a-uid/job/test")
    sha = payload["check_run"]["head_sha"]
    name = repository_of(payload)
    forge.add_file(name, sha, ".ci.yaml", SPEC)
    forge.set_permission(name, MAINTAINER, "write")
    client = serve([local_repository(G, payload["repository"]["html_url"])])
    backend.previous[sha] = PreviousRun(name="run-1", trusted=True, finished=True,
                                        pull_request=None, jobs=FAILED_TEST)
    response = post(client, payload, "check_run")
    assert response.status_code == 202, response.text
    assert jobs_of(backend) == {"test": (), "deploy": ("test",)}
    [request] = backend.requests
    # The suite's branch, as a push: the published check run lists no pull request.
    assert (request.event.sha, request.event.branch) == (sha, "master")


def test_rerun_on_the_run_check_reruns_the_failed_jobs(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = check_run_payload("5f1a-uid/run")
    sha = payload["check_run"]["head_sha"]
    name = repository_of(payload)
    forge.add_file(name, sha, ".ci.yaml", SPEC)
    forge.set_permission(name, MAINTAINER, "write")
    client = serve([local_repository(G, payload["repository"]["html_url"])])
    backend.previous[sha] = PreviousRun(
        name="run-1", trusted=True, finished=True, pull_request=None,
        jobs=FAILED_TEST | {"docs": Conclusion.CANCELLED},
    )
    assert post(client, payload, "check_run").status_code == 202
    assert jobs_of(backend) == {"test": (), "deploy": ("test",), "docs": ()}


def test_rerun_of_another_apps_check_run_is_ignored(
    serve: Serve, backend: RecordingBackend
) -> None:
    payload = check_run_payload("")
    client = serve([local_repository(G, payload["repository"]["html_url"])])
    response = post(client, payload, "check_run")
    assert "not one of Ferry's" in response.json()["skipped"]
    assert backend.requests == []


@pytest.mark.parametrize("failed", [True, False])
def test_rerun_of_the_suite_reruns_failed_jobs_or_all_when_none_failed(
    serve: Serve, forge: FakeForge, backend: RecordingBackend, failed: bool
) -> None:
    payload = contract(G, "check_suite.rerequested.json")
    payload["sender"]["login"] = MAINTAINER
    sha = payload["check_suite"]["head_sha"]
    name = repository_of(payload)
    forge.add_file(name, sha, ".ci.yaml", SPEC)
    forge.set_permission(name, MAINTAINER, "write")
    forge.add_pull_request(name, 2, head_sha=sha, head_branch="changes", author="Codertocat")
    client = serve([local_repository(G, payload["repository"]["html_url"])])
    jobs = FAILED_TEST if failed else dict.fromkeys(FAILED_TEST, Conclusion.SUCCESS)
    backend.previous[sha] = PreviousRun(name="run-1", trusted=True, finished=True,
                                        pull_request=2, jobs=jobs)
    assert post(client, payload, "check_suite").status_code == 202
    expected = {"test": (), "deploy": ("test",)} if failed else {
        "lint": (), "test": (), "deploy": ("test",), "docs": ("lint",)}
    assert jobs_of(backend) == expected
    [request] = backend.requests
    assert request.event.pull_request is not None and request.event.pull_request.number == 2


def test_rerun_of_a_commit_the_pull_request_has_moved_past_runs_nothing(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = contract(G, "check_suite.rerequested.json")
    payload["sender"]["login"] = MAINTAINER
    name = repository_of(payload)
    forge.set_permission(name, MAINTAINER, "write")
    forge.add_pull_request(name, 2, head_sha=HEAD, head_branch="changes", author="Codertocat")
    client = serve([local_repository(G, payload["repository"]["html_url"])])
    response = post(client, payload, "check_suite")
    assert "head is now" in response.json()["skipped"] and backend.requests == []


@pytest.mark.parametrize("marker", ["[skip ci]", "[CI SKIP]"])
def test_skip_ci_runs_nothing_and_leaves_the_commit_pending(
    serve: Serve, forge: FakeForge, backend: RecordingBackend, marker: str
) -> None:
    payload = contract(G, "push.branch-create.json")
    payload["head_commit"]["message"] = f"Docs only {marker}"
    sha = payload["after"]
    forge.add_file(repository_of(payload), sha, ".ci.yaml", SPEC)
    client = serve([local_repository(G, payload["repository"]["html_url"])])
    response = post(client, payload, "push")
    assert response.status_code == 202 and marker.lower() in response.json()["skipped"]
    assert backend.requests == []
    [status] = forge.statuses_for(repository_of(payload), sha)
    # Pending, never a pass: a required check must not turn green untested.
    assert status["state"] == "pending" and "not run" in status["description"]
    # On a commit that shows a verdict already, nothing is posted over it.
    forge.statuses[(repository_of(payload), sha)] = [
        {**status, "state": "failure", "description": "Failed"}
    ]
    post(client, payload, "push", delivery="d-2")
    assert len(forge.statuses_for(repository_of(payload), sha)) == 1


def test_annotated_tag_runs_the_tagged_commit(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = contract(G, "push.tag-create.json")
    commit = payload["head_commit"]["id"]
    payload["after"] = "7a9c0e44d2a4f0e3c1b9d8e7f6a5b4c3d2e1f0a9"  # the tag object
    forge.add_file(repository_of(payload), commit, ".ci.yaml", SPEC)
    client = serve([local_repository(G, payload["repository"]["html_url"])])
    assert post(client, payload, "push").status_code == 202
    [request] = backend.requests
    assert request.event.sha == commit and request.event.tag is not None


def test_skip_ci_in_a_pull_requests_head_commit_is_read_from_github(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    """GitHub's pull request event does not carry the head commit's message: it is read."""
    payload = contract(G, "pull_request.synchronize.json")
    sha = payload["pull_request"]["head"]["sha"]
    name = repository_of(payload)
    forge.add_file(name, sha, ".ci.yaml", SPEC)
    client = serve([local_repository(G, payload["repository"]["html_url"])])
    forge.commit_messages[(name, sha)] = "Fix a typo\n\n[skip ci]"
    response = post(client, payload, "pull_request")
    assert "[skip ci]" in response.json()["skipped"] and backend.requests == []
    [status] = forge.statuses_for(name, sha)
    assert status["state"] == "pending"
    # Without the marker (or with no such commit on GitHub) it runs.
    forge.commit_messages[(name, sha)] = "Fix a typo"
    assert post(client, payload, "pull_request", delivery="d-2").json()["pipelineRuns"]


def test_skip_ci_in_a_gitea_pull_requests_head_commit_is_read_from_gitea(
    serve: Serve, backend: RecordingBackend
) -> None:
    gitea = FakeForge(ForgeKind.GITEA)
    payload = contract(ForgeKind.GITEA, "pull_request.synchronized.json")
    sha = payload["pull_request"]["head"]["sha"]
    name = repository_of(payload)
    gitea.add_file(name, sha, ".ci.yaml", SPEC)
    gitea.commit_messages[(name, sha)] = "[CI SKIP] docs"
    client = serve([local_repository(ForgeKind.GITEA, payload["repository"]["html_url"])],
                   fake=gitea)
    body = encode(payload)
    headers = signed_headers(ForgeKind.GITEA, body, {
        "X-Gitea-Event": "pull_request", "X-Gitea-Delivery": "d-1",
        "Content-Type": "application/json"})
    response = client.post("/hooks", content=body, headers=headers)
    assert "[ci skip]" in response.json()["skipped"] and backend.requests == []
    [status] = gitea.statuses_for(name, sha)
    assert status["state"] == "pending"
    gitea.assert_no_violations()
