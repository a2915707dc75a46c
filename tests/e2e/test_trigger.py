"""Manual and scheduled runs the whole way: `ferry trigger` with a user's own kubeconfig (and
a scheduled RunRequest with the controller's) -> the RunRequest -> the receiver under its
ServiceAccount -> Tekton -> the kubelet's pods -> the controller's status on the commit,
which says who started the run. RBAC and the admission policy as deploy/ installs them."""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ci.forges.types import ForgeKind
from ci.kube.connecting import api_client
from ci.kube.run_requests import RunRequests, schedule_body
from ci.settings import KubernetesSettings
from tests.cluster.control_plane import ControlPlane
from tests.cluster.resources import Kube, KubeError
from tests.e2e.delivering import Team, sha_of, task_runs, team, wait_for
from tests.e2e.installation import Installation, ferry_command, token_kubeconfig

SPEC = """\
jobs:
  build:
    image: docker.io/library/alpine:3.20
    when:
      event: [manual, schedule]
    steps:
      - run: echo "$FERRY_EVENT $FERRY_SCHEDULE $FERRY_PARAMS"
"""
RUN_REQUESTS = "/apis/ferry.dev/v1alpha1/namespaces/{namespace}/runrequests"


def _user(cluster: ControlPlane, kube: Kube, namespace: str, name: str, directory: Path,
          *, may_trigger: bool) -> tuple[Path, str]:
    """A person's kubeconfig (a ServiceAccount's token stands in for a user's credentials),
    and their user name; with the ferry-trigger ClusterRole bound in `namespace` or not."""
    kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": name, "namespace": namespace}})
    answer = kube.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}})
    user = f"system:serviceaccount:{namespace}:{name}"
    if may_trigger:
        kube.create({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"ferry-trigger-{name}", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "ferry-trigger"},
            "subjects": [{"kind": "User", "name": user}],
        })
    path = token_kubeconfig(cluster, answer["status"]["token"], directory / f"{name}.kubeconfig")
    return path, user


def _trigger(kubeconfig: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ferry_command(), "trigger", "app", "-n", namespace, "--kubeconfig", str(kubeconfig),
         "--timeout", "120", *args],
        capture_output=True, text=True, timeout=180, check=False)


def _param(run: dict[str, Any], name: str) -> str:
    return str(next(p["value"] for p in run["spec"]["params"] if p["name"] == name))


def _finished(kube: Kube, team: Team, sha: str, run: str) -> dict[str, Any]:
    final = team.final_status(sha)
    assert final is not None
    [task_run] = task_runs(kube, team.namespace, run)
    pod = kube.get(f"/api/v1/namespaces/{team.namespace}/pods/{task_run['status']['podName']}")
    assert pod["status"]["phase"] == "Succeeded"  # Tekton ran it, the kubelet ran its pod
    return final


def test_ferry_trigger_runs_a_branch_head_as_the_user_and_says_so_on_the_commit(
    ferry: Installation, cluster: ControlPlane, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    alice, alice_name = _user(cluster, kube, namespace, "alice", tmp_path, may_trigger=True)
    with team(kube, namespace, ForgeKind.GITHUB) as repository:
        sha = sha_of(f"{namespace} manual")
        repository.forge.set_branch(repository.owner_name, "main", sha)
        repository.forge.add_file(repository.owner_name, sha, ".ci.yaml", SPEC)

        done = _trigger(alice, namespace, "--branch", "main", "--param", "TARGET=staging")

        assert done.returncode == 0, done.stderr
        assert f"created by {alice_name}" in done.stdout
        assert f"at {sha[:12]}" in done.stdout
        [run_name] = [line.split()[1].split("/")[1] for line in done.stdout.splitlines()
                      if line.startswith("pipelinerun ")]
        wait_for(ferry, lambda: repository.final_status(sha), what="the final status")
        final = _finished(kube, repository, sha, run_name)
        assert final["state"] == "success"
        assert f"manual run by {alice_name}" in final["description"]
        run = kube.get(f"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns/{run_name}")
        assert _param(run, "event") == "manual"
        assert _param(run, "author") == alice_name
        assert json.loads(_param(run, "params")) == {"TARGET": "staging"}
        [request] = kube.get(RUN_REQUESTS.format(namespace=namespace))["items"]
        assert request["spec"]["requestedBy"] == alice_name
        assert request["status"]["outcome"] == "created"
        assert request["status"]["pipelineRun"] == run_name

        request = kube.get(RUN_REQUESTS.format(namespace=namespace))["items"][0]
        [owner] = request["metadata"]["ownerReferences"]  # deleted with its Repository
        assert (owner["kind"], owner["name"]) == ("Repository", "app")

        missing = subprocess.run(
            [*ferry_command(), "trigger", "nope", "-n", namespace, "--kubeconfig", str(alice),
             "--branch", "main"], capture_output=True, text=True, timeout=180, check=False)
        assert missing.returncode == 1
        assert f"no Repository nope in namespace {namespace}" in missing.stderr

        gone = _trigger(alice, namespace, "--branch", "gone")
        assert gone.returncode == 1
        assert f"no run: unknown-branch: {repository.owner_name} has no branch 'gone'" in (
            gone.stderr)


def test_a_user_without_the_role_is_told_what_to_ask_for(
    ferry: Installation, cluster: ControlPlane, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    bob, _ = _user(cluster, kube, namespace, "bob", tmp_path, may_trigger=False)
    with team(kube, namespace, ForgeKind.GITHUB):
        done = _trigger(bob, namespace, "--branch", "main")
    assert done.returncode == 1
    assert f"you may not start runs in namespace {namespace}" in done.stderr
    assert "ferry-trigger" in done.stderr
    assert "Traceback" not in done.stderr
    assert kube.get(RUN_REQUESTS.format(namespace=namespace))["items"] == []


def test_a_run_request_cannot_name_someone_else_as_its_requester(
    ferry: Installation, cluster: ControlPlane, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    alice, _ = _user(cluster, kube, namespace, "alice", tmp_path, may_trigger=True)
    with api_client(KubernetesSettings(kubeconfig=alice)) as client, \
            team(kube, namespace, ForgeKind.GITHUB):
        forged = {"apiVersion": "ferry.dev/v1alpha1", "kind": "RunRequest",
                  "metadata": {"name": "forged", "namespace": namespace},
                  "spec": {"repository": "app", "event": "manual", "branch": "main",
                           "requestedBy": "the-boss"}}
        with pytest.raises(KubeError) as refused:
            Kube(client).create(forged)
    assert refused.value.status in (403, 422)
    assert "spec.requestedBy must be the user creating the RunRequest" in refused.value.body


def test_a_scheduled_run_request_runs_with_its_schedules_name(
    ferry: Installation, kube: Kube, namespace: str
) -> None:
    with team(kube, namespace, ForgeKind.GITHUB) as repository:
        sha = sha_of(f"{namespace} schedule")
        repository.forge.set_branch(repository.owner_name, "main", sha)
        repository.forge.add_file(repository.owner_name, sha, ".ci.yaml", SPEC)
        # What the controller creates at a scheduled time, with its own account
        # (tests/integration/test_schedules.py shows when and how often it does).
        with api_client(KubernetesSettings(kubeconfig=ferry.controller_kubeconfig)) as client:
            requests = RunRequests(client, request_timeout=10.0)
            body = schedule_body(namespace=namespace, repository="app", schedule="nightly",
                                 branch="main", requested_by=requests.whoami(),
                                 moment=datetime.datetime(2026, 12, 2, 3, tzinfo=datetime.UTC))
            requests.create(body)
        name = body["metadata"]["name"]
        path = f"{RUN_REQUESTS.format(namespace=namespace)}/{name}"
        wait_for(ferry, lambda: (kube.get(path).get("status") or {}).get("outcome"),
                 what="the RunRequest's outcome")
        status = kube.get(path)["status"]
        assert status["outcome"] == "created", status
        wait_for(ferry, lambda: repository.final_status(sha), what="the final status")
        final = _finished(kube, repository, sha, status["pipelineRun"])
        assert final["state"] == "success"
        assert "schedule nightly" in final["description"]
        run = kube.get(
            f"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns/{status['pipelineRun']}")
        assert _param(run, "event") == "schedule"
        assert _param(run, "schedule") == "nightly"
