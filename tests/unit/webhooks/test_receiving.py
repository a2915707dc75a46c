"""The receiver's flow through the real app: signatures, specs, trust, redeliveries, refusals."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import structlog

from ci.forges.types import ForgeKind
from ci.kube.errors import ApiUnavailableError
from tests.fakeforge import FakeForge
from tests.unit.webhooks.conftest import HELLO_WORLD, Serve
from tests.unit.webhooks.fakes import (
    SECRET,
    SPEC,
    RecordingBackend,
    contract,
    encode,
    github_headers,
    local_repository,
    signed_headers,
)

G = ForgeKind.GITHUB
REPOSITORY = "Codertocat/Hello-World"


def push_payload() -> dict[str, object]:
    return contract(G, "push.branch-create.json")


def post(client: object, payload: dict[str, object], *, event: str = "push",
         delivery: str = "delivery-1", secret: str = SECRET) -> object:
    body = encode(payload)
    headers = signed_headers(G, body, github_headers(event, delivery), secret=secret)
    return client.post("/hooks", content=body, headers=headers)  # type: ignore[attr-defined]


def seed_spec(forge: FakeForge, sha: str, spec: str = SPEC) -> None:
    forge.add_file(REPOSITORY, sha, ".ci.yaml", spec)


def test_signed_push_creates_one_run_and_leaves_its_reports_to_the_backend(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = push_payload()
    sha = str(payload["after"])
    seed_spec(forge, sha)
    response = post(serve(), payload)
    assert response.status_code == 202, response.text
    names = response.json()["pipelineRuns"]
    assert len(names) == 1 and len(backend.requests) == 1
    request = backend.requests[0]
    assert request.event.sha == sha and request.repository.url == HELLO_WORLD
    assert request.plan.jobs[0].secrets  # a push to the repository is trusted
    # Whoever reports the run (the controller, the local backend) says "queued": a second
    # `ferry` report from the receiver would be a second check run in GitHub App mode.
    assert forge.statuses_for(REPOSITORY, sha) == []


def test_a_backend_whose_runs_no_one_reports_gets_queued_from_the_receiver(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    backend.reports_runs = False
    payload = push_payload()
    sha = str(payload["after"])
    seed_spec(forge, sha)
    response = post(serve(), payload)
    assert response.json()["pipelineRuns"]
    [status] = forge.statuses_for(REPOSITORY, sha)
    assert status["state"] == "pending" and status["context"] == "ferry"
    assert status["description"] == "Queued"  # the words of the controller's first report


def test_redeliveries_are_answered_alike_without_a_second_run(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = push_payload()
    seed_spec(forge, str(payload["after"]))
    client = serve()
    answers = {post(client, payload).text for _ in range(5)}
    assert len(answers) == 1 and len(backend.requests) == 1
    # A redelivery under a new delivery id lands on the same run name, reported as existing.
    again = post(client, payload, delivery="delivery-2")
    assert again.json()["pipelineRuns"] == json.loads(answers.pop())["pipelineRuns"]
    assert len(backend.names) == 1


@pytest.mark.parametrize(
    ("secret", "drop_signature"),
    [("wrong-secret", False), (SECRET, True)],
    ids=["wrong-secret", "no-signature"],
)
def test_bad_or_missing_signature_is_401_and_creates_nothing(
    serve: Serve, forge: FakeForge, backend: RecordingBackend, secret: str, drop_signature: bool
) -> None:
    payload = push_payload()
    seed_spec(forge, str(payload["after"]))
    body = encode(payload)
    headers = signed_headers(G, body, github_headers("push"), secret=secret)
    if drop_signature:
        del headers["X-Hub-Signature-256"]
    with structlog.testing.capture_logs() as logs:
        response = serve().post("/hooks", content=body, headers=headers)
    assert response.status_code == 401
    assert "signature" in response.json()["error"]
    assert backend.requests == [] and forge.requests == []
    assert any(entry.get("outcome") == "unauthorized" for entry in logs)
    assert SECRET not in repr(logs) and SECRET not in response.text


@pytest.mark.parametrize(
    ("spec", "position"),
    [
        ("jobs:\n  test:\n    image: alpine\n    stepz: []\n", ".ci.yaml:2:3"),
        # An `include` combination without `python` once passed lint, then failed in the
        # planner; the receiver calls the same `prepare` as `ferry lint`.
        ("jobs:\n  test:\n    matrix:\n      python: ['3.12']\n      include:\n"
         "        - os: linux\n    image: python:${{ matrix.python }}\n    steps: [make]\n",
         ".ci.yaml:7:12"),
    ],
    ids=["unknown-key", "include-without-key"],
)
def test_invalid_spec_fails_the_commit_naming_the_first_error_and_its_line(
    serve: Serve, forge: FakeForge, backend: RecordingBackend, spec: str, position: str
) -> None:
    payload = push_payload()
    sha = str(payload["after"])
    seed_spec(forge, sha, spec)
    response = post(serve(), payload)
    assert response.status_code == 202
    assert position in response.json()["skipped"]
    [status] = forge.statuses_for(REPOSITORY, sha)
    assert status["state"] == "failure" and position in status["description"]
    assert backend.requests == []


def test_missing_spec_is_a_quiet_no_op(serve: Serve, forge: FakeForge,
                                       backend: RecordingBackend) -> None:
    response = post(serve(), push_payload())
    assert response.status_code == 202 and "no .ci.yaml" in response.json()["skipped"]
    assert backend.requests == [] and forge.statuses == {}


def test_branch_deletion_starts_nothing(serve: Serve, backend: RecordingBackend) -> None:
    response = post(serve(), contract(G, "push.branch-delete.json") | {
        "repository": push_payload()["repository"]})
    assert response.status_code == 202 and "deleted" in response.json()["skipped"]
    assert backend.requests == []


def test_ping_is_answered_200_and_unknown_events_202_ignored(serve: Serve) -> None:
    client = serve()
    ping = contract(G, "ping.json")
    ping["repository"] = push_payload()["repository"]
    assert post(client, ping, event="ping").status_code == 200
    labeled = contract(G, "pull_request.labeled.json")
    answer = post(client, labeled, event="pull_request", delivery="d-2")
    assert answer.status_code == 202 and answer.json()["skipped"].startswith("ignored")
    unknown = post(client, push_payload(), event="star", delivery="d-3")
    assert unknown.status_code == 202 and "ignored" in unknown.json()["skipped"]


def fork_pull_request() -> dict[str, object]:
    payload = copy.deepcopy(contract(G, "pull_request.opened.json"))
    head = payload["pull_request"]["head"]
    head["repo"] = dict(head["repo"], full_name="mallory/Hello-World")
    return payload


def test_fork_pull_request_runs_without_secrets_and_says_so(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = fork_pull_request()
    sha = payload["pull_request"]["head"]["sha"]
    seed_spec(forge, sha)
    # Local mode runs steps on the host, where untrusted code waits unless allowed.
    response = post(serve(local={"untrusted_on_host": True}), payload, event="pull_request")
    assert response.status_code == 202, response.text
    assert "without secrets" in response.json()["trust"]
    [request] = backend.requests
    assert all(not job.secrets for job in request.plan.all_jobs)
    assert request.trusted is False  # the backend withholds the rest (token, host engine)
    # The run's reporter shows the decision in its status description.
    assert "running without secrets" in request.note
    assert forge.statuses_for(REPOSITORY, sha) == []


def test_fork_pull_request_by_a_maintainer_keeps_its_secrets(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = fork_pull_request()
    seed_spec(forge, payload["pull_request"]["head"]["sha"])
    forge.set_permission(REPOSITORY, payload["pull_request"]["user"]["login"], "write")
    assert post(serve(), payload, event="pull_request").status_code == 202
    assert backend.requests[0].plan.jobs[0].secrets
    assert backend.requests[0].trusted is True


@pytest.mark.parametrize("engine", ["host", "docker"])
def test_untrusted_pull_request_waits_for_ok_to_test_on_the_host_engine(
    serve: Serve, forge: FakeForge, backend: RecordingBackend, tmp_path: Path, engine: str
) -> None:
    """The repository says runWithoutSecrets; on the host engine that is not enough: its code
    would run as the server's user. On a container engine it runs, without secrets."""
    payload = fork_pull_request()
    sha = payload["pull_request"]["head"]["sha"]
    seed_spec(forge, sha)
    client_path = tmp_path / "bin"
    client_path.mkdir()
    (client_path / "docker").write_text("#!/bin/sh\nexit 1\n")
    (client_path / "docker").chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{client_path}:/usr/bin:/bin")  # where the client is looked up
        client = serve(local={"engine": engine})
    response = post(client, payload, event="pull_request")
    assert response.status_code == 202, response.text
    if engine == "host":
        assert "/ok-to-test" in response.json()["skipped"]
        assert backend.requests == []
        [status] = forge.statuses_for(REPOSITORY, sha)
        assert status["state"] == "pending" and "/ok-to-test" in status["description"]
    else:
        [request] = backend.requests
        assert request.trusted is False and "without secrets" in response.json()["trust"]


def test_wait_for_ok_to_test_creates_nothing_and_explains_on_the_commit(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = fork_pull_request()
    sha = payload["pull_request"]["head"]["sha"]
    seed_spec(forge, sha)
    client = serve([local_repository(G, HELLO_WORLD,
                                      untrusted_pull_requests="waitForOkToTest")])
    response = post(client, payload, event="pull_request")
    assert response.status_code == 202 and "/ok-to-test" in response.json()["skipped"]
    assert backend.requests == []
    [status] = forge.statuses_for(REPOSITORY, sha)
    assert status["state"] == "pending" and "/ok-to-test" in status["description"]


def test_closed_pull_request_cancels_its_runs(serve: Serve, backend: RecordingBackend) -> None:
    payload = contract(G, "pull_request.closed.json")
    response = post(serve(), payload, event="pull_request")
    assert response.status_code == 202
    assert response.json()["cancelled"] == [f"run-of-{payload['number']}"]
    assert backend.closed == [("local/" + backend.closed[0][0].split("/", 1)[1],
                               payload["number"])]


def test_pull_request_paths_come_from_the_files_api(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = contract(G, "pull_request.opened.json")
    sha = payload["pull_request"]["head"]["sha"]
    seed_spec(forge, sha, SPEC.replace("jobs:", "when:\n  paths: [src/**]\njobs:"))
    forge.set_pull_request_files(REPOSITORY, payload["number"], ["docs/readme.md"])
    response = post(serve(), payload, event="pull_request")
    assert response.status_code == 202 and "nothing to run" not in response.text
    assert "paths" in response.json()["skipped"]
    assert backend.requests == []
    forge.set_pull_request_files(REPOSITORY, payload["number"], ["src/main.py"])
    assert post(serve(), payload, event="pull_request", delivery="d-2").status_code == 202
    assert backend.requests[0].event.changed_files == ("src/main.py",)


def test_cancel_in_progress_cancels_older_runs(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = push_payload()
    seed_spec(forge, str(payload["after"]),
              SPEC.replace("jobs:", "concurrency:\n  cancel_in_progress: true\njobs:"))
    response = post(serve(), payload)
    assert response.json()["cancelled"] == ["older-run"]
    assert backend.superseded == response.json()["pipelineRuns"]


def test_unreachable_api_server_is_503(
    serve: Serve, forge: FakeForge, backend: RecordingBackend
) -> None:
    payload = push_payload()
    seed_spec(forge, str(payload["after"]))
    backend.fail_with = ApiUnavailableError("connection refused")
    client = serve()
    assert post(client, payload).status_code == 503
    # A failed delivery is not remembered: its redelivery does the work.
    backend.fail_with = None
    assert post(client, payload).status_code == 202


def test_forge_outage_is_503_after_the_retries(serve: Serve, forge: FakeForge) -> None:
    payload = push_payload()
    seed_spec(forge, str(payload["after"]))
    forge.faults.fail_next(500, 500, 500)
    assert post(serve(), payload).status_code == 503
    forge.faults.fail_next(500)
    assert post(serve(), payload, delivery="d-2").status_code == 202


def test_two_repositories_claiming_one_url_is_409_naming_both(serve: Serve) -> None:
    client = serve([local_repository(G, HELLO_WORLD),
                    local_repository(G, HELLO_WORLD + ".git")])
    response = post(client, push_payload())
    assert response.status_code == 409
    assert response.json()["error"].count("local/") == 2


def test_unknown_repository_is_404(serve: Serve) -> None:
    client = serve([local_repository(G, "https://github.com/someone/else")])
    assert post(client, push_payload()).status_code == 404


def test_metrics_count_events_outcomes_and_runs(serve: Serve, forge: FakeForge) -> None:
    payload = push_payload()
    seed_spec(forge, str(payload["after"]))
    client = serve()
    post(client, payload)
    post(client, payload, secret="wrong")
    text = client.get("/metrics").text
    assert 'ferry_webhook_events_total{event="push",forge="github",outcome="created"} 1.0' in text
    assert 'outcome="unauthorized"' in text
    assert 'ferry_pipeline_runs_created_total{forge="github"} 1.0' in text
    assert "ferry_webhook_duration_seconds_bucket" in text


def test_health_and_readiness(serve: Serve) -> None:
    client = serve()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "mode": "local"}
