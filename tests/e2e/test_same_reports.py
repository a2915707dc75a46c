"""One spec, both backends, the same checks on the commit.

The same push of the same `.ci.yaml` goes once through the Tekton backend (receiver,
PipelineRun, Tekton, the kubelet, the controller's reports) and once through the local
backend (`ferry serve` without a cluster, the steps on this machine), each to a Gitea fake
forge of its own (commit statuses, as with a token on GitHub or GitLab). What each forge
received must agree: the same contexts (the run's and one per job, each matrix variant its
own), the same final state and words under each (durations aside), and only "Queued" and
"Running" before. `ci/forges/checks.py` is the one place that decides them.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ci.forges.types import ForgeKind
from ci.settings import LocalRepository, LocalSettings, Settings
from pipelines.events import Event, EventKind
from pipelines.linting import load_spec
from pipelines.planning import Plan, plan
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube
from tests.e2e.delivering import (
    TOKEN,
    UNFINISHED,
    WEBHOOK_SECRET,
    Team,
    deliver,
    push_payload,
    signed,
    team,
    wait_for,
)
from tests.e2e.installation import Installation
from tests.fakeforge import FakeForge
from webhooks.app import create_app

# A job that passes, an allowed failure, and a matrix whose second variant fails.
SPEC = """\
jobs:
  build:
    image: docker.io/library/alpine:3.20
    steps:
      - name: compile
        run: "true"
  lint:
    image: docker.io/library/alpine:3.20
    allow_failure: true
    steps:
      - name: style
        run: exit 1
  test:
    image: docker.io/library/alpine:3.20
    needs: build
    matrix:
      version: ["1", "2"]
    steps:
      - name: unit
        run: test "${{ matrix.version }}" = 1
"""
LOCAL_SECONDS = 120.0
_DURATION = re.compile(r" in (\d+h )?(\d+m )?\d+[sm]\b")


def _git(directory: Path, *arguments: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(directory), *arguments], check=True, capture_output=True, text=True,
        env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
             "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(directory)})
    return result.stdout.strip()


@pytest.fixture
def commit(tmp_path: Path) -> tuple[Path, str]:
    """A git repository holding the spec (the local backend clones it), and its commit."""
    remote = tmp_path / "remote"
    remote.mkdir()
    _git(remote, "init", "--quiet", "--initial-branch=main")
    (remote / ".ci.yaml").write_text(SPEC)
    _git(remote, "add", ".")
    _git(remote, "commit", "--quiet", "-m", "spec")
    return remote, _git(remote, "rev-parse", "HEAD")


@pytest.fixture
def local_forge() -> Iterator[FakeForge]:
    forge = FakeForge(ForgeKind.GITEA)
    yield forge
    forge.assert_no_violations()


def _planned(sha: str) -> Plan:
    spec, _ = load_spec(SPEC.encode(), filename=".ci.yaml")
    planned = plan(spec, Event(kind=EventKind.PUSH, repository="acme/app",
                               repository_url="https://gitea.example.com/acme/app.git",
                               sha=sha, ref="refs/heads/main", branch="main"))
    assert isinstance(planned, Plan)
    return planned


def _fail_as_the_scripts_would(kubelet: SimulatedKubelet, namespace: str, sha: str) -> None:
    """The simulated kubelet runs no script: its steps exit as the local host's would."""
    for job in _planned(sha).jobs:
        for step in job.steps:
            if job.spec_job == "lint" or (job.spec_job == "test"
                                          and job.matrix.get("version") == "2"):
                kubelet.force_exit_code(namespace, f"{job.name}/{step.name}", 1)


def _shown(statuses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per context: the states and words shown before the verdict, and the verdict."""
    by_context: dict[str, list[dict[str, Any]]] = {}
    for status in statuses:
        by_context.setdefault(status["context"], []).append(status)
    return {
        context: {
            "before": {s["description"] for s in posted if s["state"] in UNFINISHED},
            "verdict": (posted[-1]["state"], _DURATION.sub("", posted[-1]["description"])),
        }
        for context, posted in by_context.items()
    }


def _through_tekton(ferry: Installation, repository: Team, sha: str) -> list[dict[str, Any]]:
    repository.forge.add_file(repository.owner_name, sha, ".ci.yaml", SPEC)
    deliver(ferry, repository, "push", push_payload(repository, sha))
    wait_for(ferry, lambda: repository.final_status(sha), what="the Tekton run's verdict")
    return repository.statuses(sha)


def _through_the_local_backend(repository: Team, forge: FakeForge, remote: Path, sha: str,
                               state: Path) -> list[dict[str, Any]]:
    """The same Repository URL and push, served without a cluster, to a forge of its own."""
    forge.add_file(repository.owner_name, sha, ".ci.yaml", SPEC)
    settings = Settings(local=LocalSettings(
        repositories=(LocalRepository(
            forge="gitea", url=repository.url, api_url=forge.api_url,
            clone_url=remote.as_uri(), webhook_secret=WEBHOOK_SECRET, token=TOKEN),),
        state_directory=state, parallel_jobs=2))
    body, headers = signed(ForgeKind.GITEA, "push", push_payload(repository, sha))
    with TestClient(create_app(settings, forge_transport=forge.transport())) as client:
        assert client.post("/hooks", content=body, headers=headers).status_code == 202
        deadline = time.monotonic() + LOCAL_SECONDS
        while time.monotonic() < deadline:
            shown = forge.statuses_for(repository.owner_name, sha)
            if any(s["context"] == "ferry" and s["state"] not in UNFINISHED for s in shown):
                return list(shown)
            time.sleep(0.1)
    raise AssertionError(f"no local verdict: {forge.statuses_for(repository.owner_name, sha)}")


def test_one_spec_reports_the_same_checks_through_tekton_and_locally(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str,
    local_forge: FakeForge, commit: tuple[Path, str], tmp_path: Path,
) -> None:
    remote, sha = commit
    _fail_as_the_scripts_would(kubelet, namespace, sha)
    with team(kube, namespace, ForgeKind.GITEA) as repository:
        tekton = _shown(_through_tekton(ferry, repository, sha))
        local = _shown(_through_the_local_backend(repository, local_forge, remote, sha,
                                                  tmp_path / "state"))
    planned = _planned(sha).jobs
    variants = [job.name for job in planned if job.spec_job == "test"]
    [failing] = [job.name for job in planned if job.matrix.get("version") == "2"]
    # The run's check and one per job, each matrix variant its own, from both backends.
    assert set(tekton) == set(local) == {"ferry", "ferry/build", "ferry/lint",
                                         *(f"ferry/{name}" for name in variants)}
    for context in tekton:
        assert tekton[context]["verdict"] == local[context]["verdict"], context
        assert tekton[context]["before"] | local[context]["before"] <= {"Queued", "Running"}
    assert tekton["ferry"]["verdict"] == ("failure", f"Failed: {failing}")
    assert tekton["ferry/lint"]["verdict"] == ("success", "Failed (allowed)")
