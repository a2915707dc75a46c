"""The controller against the real API server and a fake forge served on 127.0.0.1.

Runs are created as the receiver creates them. Their status comes either from the real Tekton
controller with the simulated kubelet, or, for outcomes the kubelet cannot produce on demand
(cancelled, timed out), is written through the status subresource exactly as Tekton writes it
(REFERENCE.md section 5).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ci.kube import labels
from tests.binding import create_bound
from tests.cluster.kubelet import EXIT_CODES_ANNOTATION, SimulatedKubelet
from tests.cluster.resources import Kube
from tests.cluster.tekton import TektonController
from tests.integration.controller_fixtures import (
    OWNER_NAME,
    REPOSITORY_URL,
    ControllerProcess,
    ServedForge,
    controller,
    create_repository,
    ferry_run,
    reported,
    served_forge,
    set_condition,
    sha_for,
    wait_for,
)
from tests.integration.goldens import GOLDEN_DIR, load_golden

__all__ = ["controller", "served_forge"]  # fixtures, imported to be found


@pytest.mark.parametrize(
    ("reason", "state", "title"),
    [("Cancelled", "error", "Cancelled"), ("PipelineRunTimeout", "failure", "Timed out"),
     ("Failed", "failure", "Failed"), ("Succeeded", "success", "Succeeded")],
)
def test_life_of_a_run_is_reported_once_in_order(
    kube: Kube, namespace: str, served_forge: ServedForge, controller: ControllerProcess,
    reason: str, state: str, title: str,
) -> None:
    create_repository(kube, namespace, api_url=served_forge.api_url)
    controller.start()
    sha = sha_for(1)
    create_bound(kube, ferry_run(namespace, "life", sha=sha))
    def statuses(owner_name: str, sha: str, context: str = "ferry") -> list[dict[str, Any]]:
        return [s for s in served_forge.forge.statuses_for(owner_name, sha)
                if s["context"] == context]

    wait_for(lambda: len(statuses(OWNER_NAME, sha)) >= 1, what="queued", controller=controller)
    set_condition(kube, namespace, "life", "Unknown", "Running")
    wait_for(lambda: len(statuses(OWNER_NAME, sha)) >= 2, what="running", controller=controller)
    condition_status = "True" if reason == "Succeeded" else "False"
    set_condition(kube, namespace, "life", condition_status, reason)
    wait_for(lambda: reported(kube, namespace, "life").get("ack", {}).get("run", [""])[0]
             not in ("", "queued", "running"), what="final acknowledged", controller=controller)

    # Another event for the same run must not repeat anything.
    kube.merge_patch(f"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns/life",
                     {"metadata": {"annotations": {"poke": "1"}}})
    create_bound(kube, ferry_run(namespace, "sentinel", sha=sha_for(2)))
    wait_for(lambda: statuses(OWNER_NAME, sha_for(2)), what="sentinel", controller=controller)

    posted = statuses(OWNER_NAME, sha)
    assert [(s["state"], s["description"].split(" in ")[0]) for s in posted] == [
        ("pending", "Queued"), ("pending", "Running"), (state, title)]
    # Its one job has a check of its own with commit statuses too, ending once.
    job = statuses(OWNER_NAME, sha, "ferry/build")
    assert job[0]["description"] == "Queued"
    assert len([s for s in job if s["state"] != "pending"]) == 1


def test_runs_through_tekton_report_each_job_as_a_check_run(
    kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet,
    served_forge: ServedForge, controller: ControllerProcess,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    served_forge.forge.app_id = "4242"
    served_forge.forge.app_public_key = public_pem
    create_repository(kube, namespace, api_url=served_forge.api_url, github_app=(4242, 77),
                      secret_data={"private-key": private_pem})
    controller.extra = ("--details-url",
                        "https://dashboard.example/#/namespaces/{namespace}/pipelineruns/{name}")
    controller.start()
    controller.wait_ready()  # so every job is seen queued first, then moving

    golden = GOLDEN_DIR / "dag.pipelinerun.yaml"
    tasks = load_golden(golden, namespace)["spec"]["pipelineSpec"]["tasks"]
    failing_task = tasks[0]["name"]
    failing_step = tasks[0]["taskSpec"]["steps"][-1]["name"]
    runs = {}
    for name, exit_codes, sha in [("passes", {}, sha_for(10)),
                                  ("fails", {f"{failing_task}/{failing_step}": 3}, sha_for(11))]:
        run = load_golden(golden, namespace, **{EXIT_CODES_ANNOTATION: json.dumps(exit_codes)})
        run["metadata"]["name"] = name
        run["metadata"]["annotations"].update({
            labels.REPOSITORY: OWNER_NAME, labels.REPOSITORY_URL: REPOSITORY_URL,
            labels.SHA: sha})
        create_bound(kube, run)
        runs[name] = sha

    def check_runs(sha: str) -> list[dict]:  # type: ignore[type-arg]
        return [run for run in served_forge.forge.check_runs.values()
                if run.get("head_sha") == sha]

    def all_completed(sha: str) -> bool:
        found = check_runs(sha)
        return len(found) == len(tasks) + 1 and all(r["status"] == "completed" for r in found)

    for sha in runs.values():
        wait_for(lambda sha=sha: all_completed(sha), what=f"check runs of {sha} completed",
                 controller=controller, timeout=300)

    passed = {r["name"]: r for r in check_runs(runs["passes"])}
    assert set(passed) == {"ferry"} | {f"ferry/{t['name']}" for t in tasks}
    assert {r["conclusion"] for r in passed.values()} == {"success"}
    # Each job's check run moved queued -> in progress -> completed: created once, updated.
    assert all(r.get("updates", 0) >= 1 for r in passed.values())
    summary = passed["ferry"]["output"]["summary"]
    for task in tasks:
        assert f"| `{task['name']}` | Succeeded |" in summary
    assert passed["ferry"]["details_url"] == (
        f"https://dashboard.example/#/namespaces/{namespace}/pipelineruns/passes")

    failed = {r["name"]: r for r in check_runs(runs["fails"])}
    assert failed["ferry"]["conclusion"] == "failure"
    assert failed[f"ferry/{failing_task}"]["conclusion"] == "failure"
    text = failed[f"ferry/{failing_task}"]["output"]["text"]
    assert f'"step-{failing_step}" exited with code 3' in text
    # The failing step's own log, read from the kubelet through the API server (pods/log).
    assert f"step-{failing_step} was not run; its exit code is 3" in text
    assert "log unavailable" not in text
