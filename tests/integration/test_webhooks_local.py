"""`ferry serve` without a cluster: a signed push runs on this machine and the fake forge sees
pending, then the outcome. The "remote" is a local git repository (a file:// URL)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ci.forges.types import ForgeKind
from ci.settings import LocalRepository, LocalSettings, Settings
from tests.fakeforge import FakeForge
from webhooks.app import create_app

OWNER_NAME = "acme/local"
URL = f"https://github.com/{OWNER_NAME}"
SECRET = "local-hook-secret"
WAIT_SECONDS = 60.0


def _git(directory: Path, *arguments: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(directory), *arguments],
        check=True, capture_output=True, text=True,
        env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
             "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(directory)},
    )  # fmt: skip
    return result.stdout.strip()


def _commit(remote: Path, spec: str) -> str:
    (remote / ".ci.yaml").write_text(spec)
    (remote / "data.txt").write_text("hello from the commit\n")
    _git(remote, "add", ".")
    _git(remote, "commit", "--quiet", "-m", "spec")
    return _git(remote, "rev-parse", "HEAD")


def _spec(script: str) -> str:
    return f"jobs:\n  check:\n    image: alpine\n    steps:\n      - run: {script}\n"


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    directory = tmp_path / "remote"
    directory.mkdir()
    _git(directory, "init", "--quiet", "--initial-branch=main")
    return directory


@pytest.fixture
def serve(tmp_path: Path, remote: Path) -> Iterator[Callable[[FakeForge], TestClient]]:
    clients: list[TestClient] = []

    def start(forge: FakeForge) -> TestClient:
        settings = Settings(
            local=LocalSettings(
                repositories=(
                    LocalRepository(
                        forge="github", url=URL, api_url=forge.api_url,
                        clone_url=remote.as_uri(), webhook_secret=SECRET, token="test-token",
                    ),
                ),
                state_directory=tmp_path / "state",
                parallel_jobs=2,
            )
        )  # fmt: skip
        client = TestClient(create_app(settings, forge_transport=forge.transport()))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def _push(client: TestClient, sha: str, remote: Path) -> Any:
    payload = {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": sha,
        "created": True,
        "deleted": False,
        "forced": False,
        "commits": [],
        "repository": {"full_name": OWNER_NAME, "html_url": URL,
                       "clone_url": remote.as_uri()},
        "sender": {"login": "octocat"},
    }  # fmt: skip
    body = json.dumps(payload).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return client.post("/hooks", content=body, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": f"d-{sha}",
        "X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json",
    })  # fmt: skip


def _final_state(forge: FakeForge, sha: str) -> list[str]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        states = [s["state"] for s in forge.statuses_for(OWNER_NAME, sha)
                  if s["context"] == "ferry"]
        if states and states[-1] != "pending":
            return states
        time.sleep(0.05)
    raise AssertionError(f"no final status: {forge.statuses_for(OWNER_NAME, sha)}")


@pytest.mark.parametrize(
    ("script", "outcome"),
    [("grep -q hello data.txt", "success"), ("exit 3", "failure")],
    ids=["passes", "fails"],
)
def test_signed_push_runs_locally_and_reports_pending_then_the_outcome(
    serve: Callable[[FakeForge], TestClient], remote: Path, script: str, outcome: str
) -> None:
    sha = _commit(remote, _spec(script))
    forge = FakeForge(ForgeKind.GITHUB)
    forge.add_file(OWNER_NAME, sha, ".ci.yaml", _spec(script))
    client = serve(forge)
    response = _push(client, sha, remote)
    assert response.status_code == 202, response.text
    assert _final_state(forge, sha) == ["pending", outcome]
    job_states = [s["state"] for s in forge.statuses_for(OWNER_NAME, sha)
                  if s["context"] == "ferry/check"]
    assert job_states[-1] == outcome and "pending" in job_states
    forge.assert_no_violations()


def test_a_run_interrupted_by_a_restart_is_reported_as_an_error(
    serve: Callable[[FakeForge], TestClient], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    sha = "b" * 40
    forge = FakeForge(ForgeKind.GITHUB)
    client = serve(forge)  # learns the Repository's key for the in-flight entry
    [repository] = client.app.state.runtime.receiver.repositories._repositories.values()  # type: ignore[attr-defined]
    client.__exit__(None, None, None)
    (state / "in-flight.json").write_text(json.dumps([{
        "name": "local-run-1", "repository_key": repository.key,
        "forge_repository": OWNER_NAME, "sha": sha, "group": "",
    }]))  # fmt: skip
    serve(forge)
    [status] = forge.statuses_for(OWNER_NAME, sha)
    assert status["state"] == "error" and "interrupted" in status["description"]
    assert json.loads((state / "in-flight.json").read_text()) == []


def test_ferry_serve_without_a_cluster_answers_on_its_port(tmp_path: Path) -> None:
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import socket  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {
        key: value for key, value in os.environ.items()
        if not key.startswith("FERRY_") and key != "KUBECONFIG"
    } | {"FERRY_WEBHOOKS_HOST": "127.0.0.1", "FERRY_LOCAL_STATE_DIRECTORY": str(tmp_path)}
    with subprocess.Popen(
        [sys.executable, "-m", "ci.cli", "serve", "--port", str(port)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    ) as server:  # fmt: skip
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz") as answer:
                        assert json.loads(answer.read()) == {"status": "ready", "mode": "local"}
                        break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
        finally:
            server.send_signal(signal.SIGTERM)
            output, _ = server.communicate(timeout=WAIT_SECONDS)
    # uvicorn shuts down cleanly, then re-raises the signal it caught, as it documents.
    assert server.returncode in (0, -signal.SIGTERM), output.decode()
    assert b"no cluster configured" in output and b"Traceback" not in output
