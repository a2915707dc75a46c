"""The receiver's "waiting" check run never stays queued (GitHub App mode, for real).

The receiver (the app, in this process) and the controller (a process) on the real API
server, both talking to the fake GitHub App served on 127.0.0.1. A pull request from a fork
whose author has no write access waits for a maintainer: the receiver posts a queued `ferry`
check run saying so. When a run of that commit starts, the controller's first report takes
that check run over (one `ferry` check run, the run's, completed with its verdict); when a
newer push replaces the pull request's head, the receiver completes the old head's waiting
check run as superseded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.kubelet import SimulatedKubelet
from tests.integration.controller_fixtures import (
    ControllerProcess,
    controller,
    set_condition,
    wait_for,
)
from tests.integration.test_no_false_green import Setup, setup

__all__ = ["controller", "setup"]  # fixtures, imported to be found

SPEC = """\
jobs:
  test:
    image: alpine
    steps:
      - run: "true"
"""
FORK = "stranger/widget-fork"
APP_ONLY = pytest.mark.parametrize("setup", ["app"], indirect=True)


def _from_fork(ferry: Setup, name: str, *, sha: str, before: str | None = None) -> dict[str, Any]:
    payload = ferry.payload(name, sha=sha)
    payload["pull_request"]["head"]["repo"] = {**payload["pull_request"]["head"]["repo"],
                                               "full_name": FORK}
    if before is not None:
        payload["before"] = before
    ferry.forge.add_file(ferry.owner_name, sha, ".ci.yaml", SPEC)
    return payload


def _check_runs(ferry: Setup, sha: str) -> list[dict[str, Any]]:
    return [run for _, run in sorted(ferry.forge.check_runs.items())
            if run.get("head_sha") == sha and run.get("name") == "ferry"]


def _open(ferry: Setup) -> list[dict[str, Any]]:
    """Every check run not completed, on any commit."""
    return [run for run in ferry.forge.check_runs.values() if run.get("status") != "completed"]


@APP_ONLY
def test_a_run_of_the_waiting_commit_takes_its_waiting_check_run_over(
    setup: Callable[..., Setup], controller: ControllerProcess, kubelet: SimulatedKubelet,
) -> None:
    ferry = setup(untrustedPullRequests="waitForOkToTest")
    # The steps really run, and the clone's URL (github.com) is not reachable from here: its
    # failure, not the condition the test writes, could decide the run (it did, on a machine
    # where the name lookup fails at once).
    kubelet.force_exit_code(ferry.namespace, "clone", 0)
    sha = "5a" * 20
    opened = _from_fork(ferry, "pull_request.opened.json", sha=sha)
    answer = ferry.post(opened, event="pull_request")
    assert "waiting for a maintainer" in answer["skipped"], answer
    [waiting] = _check_runs(ferry, sha)
    assert (waiting["status"], waiting["external_id"]) == ("queued", "ferry-waiting")

    # A maintainer gives the author write access; the pull request is reopened: it runs.
    author = opened["pull_request"]["user"]["login"]
    ferry.forge.set_permission(ferry.owner_name, author, "write")
    reopened = _from_fork(ferry, "pull_request.reopened.json", sha=sha)
    [name] = ferry.post(reopened, event="pull_request")["pipelineRuns"]
    wait_for(lambda: _check_runs(ferry, sha)[0].get("external_id") != "ferry-waiting",
             what="the waiting check run taken over", controller=controller)
    set_condition(ferry.kube, ferry.namespace, name, "True", "Succeeded")
    wait_for(lambda: _check_runs(ferry, sha)[-1].get("conclusion") == "success",
             what="the run's success reported", controller=controller)

    [check_run] = _check_runs(ferry, sha)  # the waiting one, now the run's: no second
    assert check_run["id"] == waiting["id"]
    assert check_run["external_id"].endswith("/run")
    assert check_run["output"]["title"].startswith("Succeeded")
    assert _open(ferry) == []
    assert any(e.get("event") == "taking over the receiver's waiting check run"
               for e in controller.logs())


@APP_ONLY
def test_a_newer_push_completes_the_old_heads_waiting_check_run(
    setup: Callable[..., Setup], controller: ControllerProcess,
) -> None:
    ferry = setup(untrustedPullRequests="waitForOkToTest")
    old, new = "6b" * 20, "7c" * 20
    ferry.post(_from_fork(ferry, "pull_request.opened.json", sha=old), event="pull_request")
    [waiting] = _check_runs(ferry, old)
    assert waiting["status"] == "queued"

    pushed = _from_fork(ferry, "pull_request.synchronize.json", sha=new, before=old)
    answer = ferry.post(pushed, event="pull_request")

    assert "waiting for a maintainer" in answer["skipped"], answer
    [superseded] = _check_runs(ferry, old)
    assert superseded["id"] == waiting["id"]
    assert (superseded["status"], superseded["conclusion"]) == ("completed", "cancelled")
    assert superseded["output"]["title"] == f"Cancelled: superseded by {new[:12]}"
    [newer] = _check_runs(ferry, new)
    assert newer["status"] == "queued"  # the new head waits in its turn
    updates = superseded.get("updates", 0)

    # Redelivered, and as after a receiver restart: nothing more is written.
    ferry.post(pushed, event="pull_request", delivery="again")
    assert _check_runs(ferry, old) == [superseded] and superseded.get("updates", 0) == updates
    assert len(_check_runs(ferry, new)) == 1
    assert [run["head_sha"] for run in _open(ferry)] == [new]
