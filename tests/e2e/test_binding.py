"""Only runs Ferry created are reported, to the repository they belong to: with deploy/'s
RBAC on the real API server, a team member who may create PipelineRuns in the team's
namespace (what Kubernetes' `edit` role and Tekton's `tekton-aggregate-edit` grant) makes
runs with forged labels and annotations, and the fake forge receives nothing from any of
them; the receiver's own runs are still reported. The binding key is out of the member's
reach: the API server refuses it (docs/controller.md, "Which runs are reported")."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ci.forges.types import ForgeKind
from ci.kube import labels
from ci.kube.repositories import normalize_url
from tests.cluster.control_plane import ControlPlane
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube, KubeError
from tests.e2e.delivering import Team, deliver, push_payload, sha_of, signed, team, wait_for
from tests.e2e.installation import SYSTEM_NAMESPACE, Installation

MEMBER = "alice@example.com"
BINDING_SECRET = "ferry-binding-key"
BUILD = """\
jobs:
  build:
    image: docker.io/library/alpine:3.20
    steps:
      - run: echo built
"""
WRITE = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
# A team member's Role: what Kubernetes' `edit` grants on these kinds, and what Tekton's release
# adds to it (config/clusterrole-aggregate-edit.yaml). Spelt out: the test cluster runs no
# ClusterRole aggregation controller, so its `edit` is empty.
TEAM_MEMBER_RULES = [
    {"apiGroups": [""], "resources": ["secrets", "configmaps", "pods", "serviceaccounts"],
     "verbs": WRITE},
    {"apiGroups": [""], "resources": ["pods/exec", "pods/attach", "pods/log"],
     "verbs": ["create", "get"]},
    {"apiGroups": ["tekton.dev"],
     "resources": ["tasks", "taskruns", "pipelines", "pipelineruns", "customruns"],
     "verbs": WRITE},
    {"apiGroups": ["ferry.dev"], "resources": ["repositories"], "verbs": ["get", "list", "watch"]},
]


@pytest.fixture
def member(cluster: ControlPlane, kube: Kube, namespace: str) -> Iterator[Kube]:
    """A team member of `namespace` (TEAM_MEMBER_RULES there, nothing elsewhere): the admin's
    client impersonating them, as `kubectl --as` does."""
    kube.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "team-member", "namespace": namespace},
                 "rules": TEAM_MEMBER_RULES})
    kube.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "team-member", "namespace": namespace},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "team-member"},
                 "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                               "name": MEMBER}]})
    client = cluster.api_client()
    client.set_default_header("Impersonate-User", MEMBER)
    yield Kube(client)
    client.close()


def _runs_path(namespace: str) -> str:
    return f"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns"


def _copy(run: dict[str, Any], name: str) -> dict[str, Any]:
    """`run` as a member would copy it with kubectl: metadata and spec, a new name."""
    metadata = run["metadata"]
    spec = copy.deepcopy(run["spec"])
    spec.pop("status", None)
    return {"apiVersion": run["apiVersion"], "kind": run["kind"],
            "metadata": {"name": name, "namespace": metadata["namespace"],
                         "labels": dict(metadata.get("labels") or {}),
                         "annotations": {key: value for key, value in
                                         (metadata.get("annotations") or {}).items()
                                         if key != labels.REPORTED}},
            "spec": spec}


def _refusals(ferry: Installation, namespace: str) -> dict[str, str]:
    """Run name -> reason, from the controller's `run refused` log lines in `namespace`."""
    found = {}
    for line in ferry.controller.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and "run refused" in line:
            entry = json.loads(line)
            where, name = entry["run"].split("/", 1)
            if where == namespace:
                found[name] = entry["reason"]
    return found


def _succeeded(member: Kube, namespace: str, name: str) -> bool:
    run = member.get(f"{_runs_path(namespace)}/{name}")
    return any(c.get("type") == "Succeeded" and c.get("status") == "True"
               for c in (run.get("status") or {}).get("conditions") or [])


def test_the_binding_key_is_out_of_a_team_members_reach(
    ferry: Installation, kube: Kube, member: Kube, namespace: str
) -> None:
    secret = f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/secrets/{BINDING_SECRET}"
    # Made by the first of the two components that started, not by the install.
    assert kube.get(secret)["data"]["key"]
    with pytest.raises(KubeError) as refused:
        member.get(secret)
    assert refused.value.status == 403
    review = member.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                            body={"apiVersion": "authorization.k8s.io/v1",
                                  "kind": "SelfSubjectAccessReview",
                                  "spec": {"resourceAttributes": {
                                      "namespace": SYSTEM_NAMESPACE, "verb": "get",
                                      "resource": "secrets", "name": BINDING_SECRET}}})
    assert review["status"]["allowed"] is False
    # The member really is one: their own namespace's Secrets and runs are theirs.
    assert member.get(f"/api/v1/namespaces/{namespace}/secrets")["items"] is not None
    assert member.get(_runs_path(namespace))["items"] == []


def test_a_team_members_hand_made_runs_reach_no_forge(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, member: Kube, namespace: str
) -> None:
    with team(kube, namespace, ForgeKind.GITHUB) as repository:
        genuine_sha = sha_of(f"{namespace} genuine")
        repository.forge.add_file(repository.owner_name, genuine_sha, ".ci.yaml", BUILD)
        [genuine] = deliver(ferry, repository, "push", push_payload(repository, genuine_sha))
        wait_for(ferry, lambda: repository.final_status(genuine_sha), what="the genuine run")
        assert repository.final_status(genuine_sha)["state"] == "success"  # type: ignore[index]

        # The member reads the receiver's run (they may) and makes their own from it: the
        # same spec, which Tekton runs to success, so any report would be a green one.
        original = member.get(f"{_runs_path(namespace)}/{genuine}")
        victim_sha = sha_of(f"{namespace} a commit nobody tested")
        other = "acme/another-repository"
        forged = _forged_runs(original, repository, victim_sha=victim_sha, other=other)
        for run in forged.values():
            member.create(run)

        expected = {"copied-binding-other-sha": "forged", "copied-binding-other-repo": "forged",
                    "renamed": "forged", "unbound": "unbound", "labels-name-nothing": "unbound",
                    "made-up-binding": "malformed"}
        assert set(expected) == set(forged)
        wait_for(ferry, lambda: _refusals(ferry, namespace) == expected,
                 what="the controller refusing every hand-made run")
        wait_for(ferry, lambda: all(_succeeded(member, namespace, name) for name in forged),
                 what="Tekton finishing the hand-made runs")
        # A receiver-made run delivered after them is still reported, to the end: by then the
        # controller has looked at the hand-made runs' last states too (each run's events
        # are handled in order, and the refusals above show each was looked at).
        later_sha = sha_of(f"{namespace} later")
        repository.forge.add_file(repository.owner_name, later_sha, ".ci.yaml", BUILD)
        deliver(ferry, repository, "push", push_payload(repository, later_sha))
        wait_for(ferry, lambda: repository.final_status(later_sha), what="the later run")

        assert repository.statuses(victim_sha) == []
        assert repository.forge.statuses_for(other, victim_sha) == []
        assert repository.forge.statuses_for(other, genuine_sha) == []
        assert not [run for run in repository.forge.check_runs.values()
                    if run.get("head_sha") in (victim_sha, genuine_sha)]
        # The genuine commit got its own run's statuses (the run's and its job's), and none
        # more from the copies.
        for context in ("ferry", "ferry/build"):
            assert [s["state"] for s in repository.statuses(genuine_sha)
                    if s["context"] == context] == ["pending", "pending", "success"]
        assert _refusals(ferry, namespace) == expected


def _forged_runs(original: dict[str, Any], repository: Team, *, victim_sha: str, other: str
                 ) -> dict[str, dict[str, Any]]:
    runs = {}

    def make(name: str) -> dict[str, Any]:
        run = _copy(original, name)
        runs[name] = run
        return run

    # The receiver's binding, copied onto a run for another commit of the same repository...
    run = make("copied-binding-other-sha")
    run["metadata"]["annotations"][labels.SHA] = victim_sha
    run["metadata"]["labels"][labels.SHA] = victim_sha
    # ... or for another repository the namespace's token reaches.
    run = make("copied-binding-other-repo")
    run["metadata"]["annotations"][labels.REPOSITORY] = other
    # The same run, only under another name (a second green for every check of the commit).
    make("renamed")
    # No binding: labels and annotations as the receiver writes them, for another commit.
    run = make("unbound")
    del run["metadata"]["annotations"][labels.BINDING]
    run["metadata"]["annotations"][labels.SHA] = victim_sha
    # No binding, and labels naming no Repository object: only the URL annotation.
    run = make("labels-name-nothing")
    del run["metadata"]["annotations"][labels.BINDING]
    run["metadata"]["labels"] = {labels.MANAGED_BY: labels.MANAGED_BY_FERRY}
    run["metadata"]["annotations"][labels.SHA] = victim_sha
    # A binding made up by the member.
    run = make("made-up-binding")
    run["metadata"]["annotations"][labels.BINDING] = "v1.trust-me"
    run["metadata"]["annotations"][labels.SHA] = victim_sha
    # Every one names the team's Repository by URL: its credentials are the ones at stake.
    assert {normalize_url(r["metadata"]["annotations"][labels.REPOSITORY_URL])
            for r in runs.values()} == {normalize_url(repository.url)}
    return runs


def test_a_run_made_ahead_under_the_receivers_name_is_not_taken_for_its_own(
    ferry: Installation, kube: Kube, kubelet: SimulatedKubelet, member: Kube, namespace: str
) -> None:
    with team(kube, namespace, ForgeKind.GITHUB) as repository:
        sha = sha_of(f"{namespace} squatted")
        repository.forge.add_file(repository.owner_name, sha, ".ci.yaml", BUILD)
        [name] = deliver(ferry, repository, "push", push_payload(repository, sha))
        wait_for(ferry, lambda: repository.final_status(sha), what="the first run")
        # The member replaces the receiver's run with an unbound one of the same name; the
        # forge sends the event again (a new delivery: the same run name).
        original = member.get(f"{_runs_path(namespace)}/{name}")
        member.delete(f"{_runs_path(namespace)}/{name}")
        wait_for(ferry, lambda: not member.exists(f"{_runs_path(namespace)}/{name}"),
                 what="the receiver's run gone")
        squatter = _copy(original, name)
        del squatter["metadata"]["annotations"][labels.BINDING]
        member.create(squatter)
        response = ferry.post(*signed_delivery(repository, sha))
        assert response.status_code == 502, response.text
        assert "Ferry's receiver did not make it" in response.json()["error"]
        assert "(unbound)" in response.json()["error"]
        wait_for(ferry, lambda: _refusals(ferry, namespace).get(name) == "unbound",
                 what="the controller refusing the squatter")
        for context in ("ferry", "ferry/build"):
            assert [s["state"] for s in repository.statuses(sha)
                    if s["context"] == context] == ["pending", "pending", "success"]


def signed_delivery(repository: Team, sha: str) -> tuple[bytes, dict[str, str]]:
    return signed(repository.kind, "push", push_payload(repository, sha))
