"""Admission under a concurrency limit and pruning beyond keepRuns, on the real API server."""

from __future__ import annotations

import datetime
import itertools

from ci.kube import labels
from tests.binding import create_bound
from tests.cluster.resources import Kube
from tests.integration.controller_fixtures import (
    ControllerProcess,
    ServedForge,
    controller,
    create_repository,
    ferry_run,
    reported,
    run_path,
    served_forge,
    set_condition,
    sha_for,
    wait_for,
)

__all__ = ["controller", "served_forge"]


def _pending(kube: Kube, namespace: str, name: str) -> bool:
    return kube.get(run_path(namespace, name))["spec"].get("status") == labels.PENDING


def _finished(kube: Kube, namespace: str, name: str) -> bool:
    conditions = (kube.get(run_path(namespace, name)).get("status") or {}).get("conditions")
    return bool(conditions) and conditions[0].get("status") != "Unknown"


def test_pending_runs_are_admitted_in_creation_order_one_slot_at_a_time(
    kube: Kube, namespace: str, served_forge: ServedForge, controller: ControllerProcess
) -> None:
    create_repository(kube, namespace, api_url=served_forge.api_url, keep_runs=100)
    group = {labels.CONCURRENCY_GROUP: "branch-main"}
    limit = {labels.CONCURRENCY_LIMIT: "1"}
    names = ["first", "second", "third"]
    for index, name in enumerate(names):
        create_bound(kube, ferry_run(namespace, name, sha=sha_for(index), extra_labels=group,
                              extra_annotations=limit))
    # Another group is not held back by this one.
    create_bound(kube, ferry_run(namespace, "elsewhere", sha=sha_for(9),
                          extra_labels={labels.CONCURRENCY_GROUP: "pr-7"},
                          extra_annotations=limit))
    controller.start()
    for name in names:
        wait_for(lambda name=name: not _pending(kube, namespace, name),
                 what=f"{name} admitted", controller=controller)
        if name == "second":
            # A restarted controller decides from the API server's state alone.
            controller.kill()
            controller.start()
        # The admitted run ends (when the session's Tekton and kubelet run, they may have
        # ended it already); its slot goes to the next.
        if not _finished(kube, namespace, name):
            set_condition(kube, namespace, name, "False", "Cancelled")
    wait_for(lambda: not _pending(kube, namespace, "elsewhere"), what="other group admitted",
             controller=controller)

    admissions = [(entry["run"].split("/")[-1], entry["timestamp"]) for entry in controller.logs()
                  if entry.get("event") == "admitted"]
    assert [name for name, _ in admissions if name in names] == names
    # Never two at once: each was admitted only after the one before it had finished.
    admitted_at = {name: datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                   .timestamp() for name, stamp in admissions}
    for previous, name in itertools.pairwise(names):
        completion = kube.get(run_path(namespace, previous))["status"]["completionTime"]
        done = datetime.datetime.fromisoformat(completion.replace("Z", "+00:00")).timestamp()
        assert done <= admitted_at[name] + 1.0, (previous, name)  # 1 s: RFC 3339 seconds


def test_finished_runs_beyond_keep_runs_are_deleted_after_their_final_report(
    kube: Kube, namespace: str, served_forge: ServedForge, controller: ControllerProcess
) -> None:
    create_repository(kube, namespace, api_url=served_forge.api_url, keep_runs=2)
    controller.start()
    names = ["run-1", "run-2", "run-3", "run-4"]  # one second may hold them all: names order
    for index, name in enumerate(names):
        create_bound(kube, ferry_run(namespace, name, sha=sha_for(index)))
    create_bound(kube, ferry_run(namespace, "still-running", sha=sha_for(8)))
    for name in names:
        set_condition(kube, namespace, name, "True", "Succeeded")

    def exists(name: str) -> bool:
        return kube.exists(run_path(namespace, name))

    wait_for(lambda: not exists("run-1") and not exists("run-2"), what="old runs pruned",
             controller=controller)
    assert exists("run-3") and exists("run-4") and exists("still-running")
    for name in ("run-3", "run-4"):
        assert reported(kube, namespace, name)["ack"]["run"][0] == "success"
    # Pruned runs were reported before they went.
    for index in (0, 1):
        states = [s["state"] for s in served_forge.forge.statuses_for("acme/widget",
                                                                      sha_for(index))]
        assert states[-1] == "success"
