"""Gitea and GitLab, end to end: their example push payloads, signed as each signs them
(Gitea: HMAC-SHA256 of the body; GitLab: the secret token itself), become runs whose life
comes back as commit statuses: Gitea's `pending` then `success`/`failure`, GitLab's
`pending`, `running`, then `success`/`failed`."""

from __future__ import annotations

import pytest

from ci.forges.types import ForgeKind
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube
from tests.e2e.delivering import deliver, push_payload, sha_of, team, wait_for
from tests.e2e.installation import Installation

SPEC = """\
jobs:
  build:
    image: docker.io/library/alpine:3.20
    steps:
      - name: compile
        run: echo compiled
  test:
    image: docker.io/library/alpine:3.20
    needs: build
    steps:
      - name: unit
        run: echo tested
"""
# What each forge calls the verdicts (ci/forges/*/client.py map Ferry's conclusions).
STATES = {
    ForgeKind.GITEA: {"running": "pending", "success": "success", "failure": "failure"},
    ForgeKind.GITLAB: {"running": "running", "success": "success", "failure": "failed"},
}


@pytest.mark.parametrize("kind", [ForgeKind.GITEA, ForgeKind.GITLAB], ids=lambda k: k.value)
def test_pushes_report_commit_statuses_from_queued_to_the_verdict(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, namespace: str, kind: ForgeKind
) -> None:
    states = STATES[kind]
    kubelet.force_exit_code(namespace, "test/unit", 1)
    with team(kube, namespace, kind) as repository:
        passing, failing = sha_of(f"{namespace} passing"), sha_of(f"{namespace} failing")
        # Without the `test` job, whose step the kubelet fails in this namespace.
        repository.forge.add_file(repository.owner_name, passing, ".ci.yaml",
                                  SPEC.split("  test:", maxsplit=1)[0])
        repository.forge.add_file(repository.owner_name, failing, ".ci.yaml", SPEC)
        deliver(ferry, repository, "push", push_payload(repository, passing, branch="dev"))
        deliver(ferry, repository, "push", push_payload(repository, failing))
        wait_for(ferry, lambda: repository.final_status(passing) and
                 repository.final_status(failing), what="both final statuses")

        for sha, verdict in ((passing, "success"), (failing, "failure")):
            statuses = repository.statuses(sha)
            # The controller's "Queued" first: the receiver reports nothing of a run it
            # leaves to the controller.
            assert (statuses[0]["state"], statuses[0]["description"]) == ("pending", "Queued")
            assert any(s["state"] == states["running"] and s["description"] == "Running"
                       for s in statuses), statuses
            assert statuses[-1]["state"] == states[verdict], statuses
            # A check per job besides the run's, with commit statuses as with check runs.
            jobs = {"ferry/build"} | ({"ferry/test"} if sha == failing else set())
            assert {s["context"] for s in statuses} == {"ferry"} | jobs, statuses
        assert repository.statuses(failing)[-1]["description"].endswith(": test")
