"""`ferry serve` without a cluster: a signed push runs on this machine and the fake forge sees
pending, then the outcome. The "remote" is a local git repository (a file:// URL)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from ci.archive.layout import parse_log_name
from ci.archive.steps import StepRecord, read_log, read_record
from ci.backends import RunRequest
from ci.forges.types import ForgeKind
from ci.masking import MASK
from ci.settings import ArchiveGroupSettings, LocalRepository, LocalSettings, Settings
from pipelines.events import Event, EventKind, PullRequest
from pipelines.linting import load_spec
from pipelines.planning import Plan, plan
from pipelines.scripts import EVENT_PARAMS
from tests.cluster.log_archives import LogArchive, log_archive
from tests.contracts import CONTRACTS
from tests.fakeforge import FakeForge
from tests.fakeforge.serving import serve as serve_forge
from tests.pids import alive
from webhooks.app import create_app

__all__ = ["log_archive"]  # a fixture, imported to be found

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
def serve(tmp_path: Path, remote: Path) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def start(forge: FakeForge, *, archive: dict[str, str] | None = None,
              secrets: dict[str, str] | None = None) -> TestClient:
        settings = Settings(
            archive=ArchiveGroupSettings(**(archive or {})),  # type: ignore[arg-type]
            local=LocalSettings(
                repositories=(
                    LocalRepository(
                        forge="github", url=URL, api_url=forge.api_url,
                        clone_url=remote.as_uri(), webhook_secret=SECRET, token="test-token",
                    ),
                ),
                state_directory=tmp_path / "state",
                parallel_jobs=2,
                secrets=secrets or {},
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


def test_ferry_serve_without_a_cluster_archives_step_logs_as_the_controller_does(
    serve: Callable[..., TestClient], remote: Path, log_archive: LogArchive
) -> None:
    secret = "local-deploy-token-0123456789"
    spec = ("jobs:\n  check:\n    image: alpine\n    secrets:\n      DEPLOY_TOKEN: deploy/token\n"
            "    steps:\n      - name: show\n        run: |\n          echo \"start\"\n"
            "          echo \"token $DEPLOY_TOKEN\"\n          exit 4\n"
            "      - name: after\n        run: echo never\n")
    sha = _commit(remote, spec)
    forge = FakeForge(ForgeKind.GITHUB)
    forge.add_file(OWNER_NAME, sha, ".ci.yaml", spec)
    client = serve(forge, archive=log_archive.settings, secrets={"deploy/token": secret})
    assert _push(client, sha, remote).status_code == 202
    assert _final_state(forge, sha) == ["pending", "failure"]

    def records() -> dict[str, StepRecord]:
        found = {}
        for stored in log_archive.store.list("local/"):
            key = parse_log_name(stored.name.removesuffix(".json") + ".log.gz")
            record = read_record(log_archive.store, key) if key is not None else None
            if record is not None:
                found[record.key.step] = record
        return found

    deadline = time.monotonic() + WAIT_SECONDS
    while len(records()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    shown, after = records()["show"], records()["after"]
    # The controller's shape: namespace `local`, the Repository's name, the run, the job.
    assert shown.key.namespace == "local" and shown.key.job == "check"
    assert shown.key.repository.startswith("acme-local-") and shown.details.sha == sha
    assert (shown.details.exit_code, shown.details.forge_repository) == (4, OWNER_NAME)
    assert shown.details.started_at and shown.details.finished_at
    log = read_log(log_archive.store, shown.key)
    assert log is not None and b"".join(log).decode() == f"start\ntoken {MASK}\n"
    assert after.details.reason == "not_run" and after.details.exit_code is None
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


# Values only the server holds; a step must find none of them.
SERVER_TOKEN = "forge-token-held-by-the-server"
OTHER_SECRET = "secret-of-another-job"
SERVER_VARIABLE = "variable-only-in-the-servers-shell"
ALLOWED_SECRET = "value-the-job-asked-for"
# What bash adds to the environment it passes on, whatever it was given.
SHELL_VARIABLES = {"PWD", "SHLVL", "_", "OLDPWD"}
DUMP_SPEC = """\
jobs:
  dump:
    image: alpine
    env:
      DUMP: {dump}
    secrets:
      API_KEY: deploy/key
    steps:
      - run: |
          env > "$DUMP/env.txt"
          ls -A "$HOME" > "$DUMP/home.txt"
          # Where a step could learn of the settings file from what it was given.
          for place in "${{FERRY_CONFIG:-}}" "$HOME" "$PWD"; do
            [ -n "$place" ] && find "$place" -name 'ferry.yaml' >> "$DUMP/found.txt" || true
          done
          touch "$DUMP/done"
"""


def _fork_pull_request(remote: Path) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(
        (CONTRACTS / "github" / "webhooks" / "pull_request.opened.json").read_bytes()
    )
    repository = {"full_name": OWNER_NAME, "html_url": URL, "clone_url": remote.as_uri()}
    payload["repository"] |= repository
    payload["pull_request"]["base"]["repo"] |= repository
    payload["pull_request"]["head"]["repo"] |= {"full_name": "mallory/local"}
    return payload


def _signed(body: bytes, event: str, delivery: str) -> dict[str, str]:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json"}


def test_a_step_of_ferry_serve_finds_no_secret_and_untrusted_code_waits(
    tmp_path: Path, remote: Path
) -> None:
    """`ferry serve` as a process, with its settings in a file named by $FERRY_CONFIG in
    its own HOME and working directory: a step on the host engine sees only what it was
    given, and a fork's pull request does not run at all (it waits for /ok-to-test)."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import socket  # noqa: PLC0415
    import sys  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    dump = tmp_path / "dump"
    dump.mkdir()
    spec = DUMP_SPEC.format(dump=dump)
    sha = _commit(remote, spec)
    forge = FakeForge(ForgeKind.GITHUB, tokens={SERVER_TOKEN})
    forge.add_file(OWNER_NAME, sha, ".ci.yaml", spec)
    pull_request = _fork_pull_request(remote)
    fork_sha = pull_request["pull_request"]["head"]["sha"]
    fork_dump = tmp_path / "fork-dump"
    forge.add_file(OWNER_NAME, fork_sha, ".ci.yaml", DUMP_SPEC.format(dump=fork_dump))
    server_home = tmp_path / "server-home"
    (server_home / ".config" / "ferry").mkdir(parents=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with serve_forge(forge) as api_url:
        settings = yaml.safe_dump({
            "webhooks": {"host": "127.0.0.1", "port": port},
            "local": {
                "state_directory": str(tmp_path / "state"),
                "repositories": [{
                    "forge": "github", "url": URL, "api_url": api_url,
                    "clone_url": remote.as_uri(), "webhook_secret": SECRET,
                    "token": SERVER_TOKEN,
                }],
                "secrets": {"deploy/key": ALLOWED_SECRET, "other/key": OTHER_SECRET},
            },
        })  # fmt: skip
        settings_file = server_home / ".config" / "ferry" / "ferry.yaml"
        settings_file.write_text(settings)
        (server_home / "ferry.yaml").write_text(settings)
        environment = {
            key: value for key, value in os.environ.items()
            if not key.startswith("FERRY_") and key != "KUBECONFIG"
        } | {"HOME": str(server_home), "FERRY_CONFIG": str(settings_file),
             "SERVER_ONLY": SERVER_VARIABLE, "FERRY_LOCAL_PARALLEL_JOBS": "2"}  # fmt: skip
        with subprocess.Popen(
            [sys.executable, "-m", "ci.cli", "serve"], cwd=server_home,
            env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        ) as server:  # fmt: skip
            try:
                base = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + WAIT_SECONDS
                while True:
                    try:
                        if httpx.get(f"{base}/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert server.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
                fork_body = json.dumps(pull_request).encode()
                fork = httpx.post(f"{base}/hooks", content=fork_body,
                                  headers=_signed(fork_body, "pull_request", "d-fork"))
                push_body = json.dumps({
                    "ref": "refs/heads/main", "before": "0" * 40, "after": sha,
                    "created": True, "deleted": False, "forced": False, "commits": [],
                    "repository": {"full_name": OWNER_NAME, "html_url": URL,
                                   "clone_url": remote.as_uri()},
                    "sender": {"login": "octocat"},
                }).encode()  # fmt: skip
                push = httpx.post(f"{base}/hooks", content=push_body,
                                  headers=_signed(push_body, "push", "d-push"))
                assert push.status_code == 202, push.text
                assert _final_state(forge, sha)[-1] == "success", forge.statuses_for(
                    OWNER_NAME, sha)
            finally:
                server.send_signal(signal.SIGTERM)
                output, _ = server.communicate(timeout=WAIT_SECONDS)
    assert b"Traceback" not in output, output.decode()
    # The fork's code never ran: the receiver held it for a maintainer.
    assert fork.status_code == 202 and "/ok-to-test" in fork.json()["skipped"], fork.text
    [waiting] = forge.statuses_for(OWNER_NAME, fork_sha)
    assert waiting["state"] == "pending" and "/ok-to-test" in waiting["description"]
    assert not fork_dump.exists()
    # The trusted step ran, and saw what it was given and nothing of the server's.
    assert (dump / "done").exists()
    variables = dict(
        line.split("=", 1) for line in (dump / "env.txt").read_text().splitlines() if "=" in line
    )
    dumped = (dump / "env.txt").read_text()
    for value in (SECRET, SERVER_TOKEN, OTHER_SECRET, SERVER_VARIABLE, str(settings_file),
                  str(server_home)):
        assert value not in dumped, value
    assert variables["API_KEY"] == ALLOWED_SECRET
    assert variables["DUMP"] == str(dump) and variables["FERRY_SHA"] == sha
    given = set(variables) - SHELL_VARIABLES
    # Ferry's own variables, exactly as the Tekton compiler passes them (no FERRY_* setting).
    ferry = {env for _, env, _ in EVENT_PARAMS} | {"CI", "FERRY", "FERRY_JOB",
                                                   "FERRY_PIPELINE_RUN"}
    assert given == ferry | {"PATH", "LANG", "HOME", "TMPDIR", "DUMP", "API_KEY"}, given
    assert "FERRY_CONFIG" not in variables
    assert (dump / "home.txt").read_text() == ""  # a fresh HOME, not the server's
    assert (dump / "found.txt").read_text() == ""


def test_the_local_backend_refuses_an_untrusted_run_that_reaches_the_host_engine(
    serve: Callable[[FakeForge], TestClient], remote: Path, tmp_path: Path
) -> None:
    """The receiver holds untrusted pull requests back on the host engine; should one reach
    the backend anyway (a future caller, a bug), it is refused with an error, not run."""
    marker = tmp_path / "ran"
    spec = _spec(f"touch {marker}")
    sha = _commit(remote, spec)
    forge = FakeForge(ForgeKind.GITHUB)
    client = serve(forge)
    receiver = client.app.state.runtime.receiver  # type: ignore[attr-defined]
    [repository] = receiver.repositories._repositories.values()
    event = Event(
        kind=EventKind.PULL_REQUEST, repository=OWNER_NAME, repository_url=remote.as_uri(),
        sha=sha, ref="refs/pull/1/head", branch="main",
        pull_request=PullRequest(number=1, title="t", head_branch="fork", base_branch="main",
                                 author="mallory", from_fork=True),
        author="mallory",
    )  # fmt: skip
    spec_value, _ = load_spec(spec.encode(), filename=".ci.yaml")
    planned = plan(spec_value, event)
    assert isinstance(planned, Plan)
    assert client.portal is not None
    access = client.portal.call(receiver.repository_forges.for_repository, repository)
    request = RunRequest(
        repository=repository, event=event, plan=planned, trusted=False,
        forge=access.connection.client, forge_repository=OWNER_NAME,
    )  # fmt: skip
    client.portal.call(receiver.backend.submit, request)
    states = _final_state(forge, sha)
    [final] = [s for s in forge.statuses_for(OWNER_NAME, sha) if s["context"] == "ferry"]
    assert states == ["error"] and "untrusted code does not run" in final["description"]
    assert not marker.exists()


def test_the_local_backend_knows_which_jobs_of_a_commits_newest_run_failed(
    serve: Callable[[FakeForge], TestClient], remote: Path
) -> None:
    """What `/retest` asks: the jobs that did not pass, once the run is over."""
    spec = ("jobs:\n  fine:\n    image: alpine\n    steps:\n      - run: 'true'\n"
            "  broken:\n    image: alpine\n    steps:\n      - run: exit 3\n")
    sha = _commit(remote, spec)
    forge = FakeForge(ForgeKind.GITHUB)
    forge.add_file(OWNER_NAME, sha, ".ci.yaml", spec)
    client = serve(forge)
    assert _push(client, sha, remote).status_code == 202
    assert _final_state(forge, sha)[-1] == "failure"
    receiver = client.app.state.runtime.receiver  # type: ignore[attr-defined]
    [repository] = receiver.repositories._repositories.values()
    found = asyncio.run(receiver.backend.newest_run(repository, sha))
    assert found is not None and found.finished and found.trusted
    assert found.failed == {"broken"} and found.pull_request is None
    assert asyncio.run(receiver.backend.newest_run(repository, sha, pull_request=3)) is None
    assert asyncio.run(receiver.backend.newest_run(repository, "c" * 40)) is None


def test_a_newer_push_stops_the_older_runs_step_and_it_reports_cancelled(
    serve: Callable[[FakeForge], TestClient], remote: Path, tmp_path: Path
) -> None:
    # The run is a thread of the server's own; the cancel comes from the event loop.
    pid_file = tmp_path / "older.pid"
    specs = {"older": "concurrency: {cancel_in_progress: true}\n" + _spec(
        f"'echo $$ > {pid_file}; exec sleep 300'"),
        "newer": "concurrency: {cancel_in_progress: true}\n" + _spec("echo newer")}
    forge = FakeForge(ForgeKind.GITHUB)
    older = _commit(remote, specs["older"])
    forge.add_file(OWNER_NAME, older, ".ci.yaml", specs["older"])
    client = serve(forge)
    assert _push(client, older, remote).status_code == 202
    deadline = time.monotonic() + WAIT_SECONDS
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, forge.statuses_for(OWNER_NAME, older)
        time.sleep(0.05)
    step = int(pid_file.read_text())

    newer = _commit(remote, specs["newer"])
    forge.add_file(OWNER_NAME, newer, ".ci.yaml", specs["newer"])
    assert _push(client, newer, remote).status_code == 202

    assert _final_state(forge, older)[-1] == "error"
    final = [s for s in forge.statuses_for(OWNER_NAME, older) if s["context"] == "ferry"][-1]
    assert "cancel" in final["description"].lower(), final
    assert not alive(step)
    assert _final_state(forge, newer)[-1] == "success"
    forge.assert_no_violations()
