"""docs/install.md's GitOps install of a team, for real: the team's kustomization from the
docs, with the files the docs show beside it, built by kustomize (the kubectl built beside
the API server) and applied to a real API server with Ferry installed (a server-side dry run,
so the CRD's schema and the RBAC objects are checked by the server itself).

The kustomization names Ferry's `deploy/team` by its URL at a release; with no network here,
this checkout's `deploy/team` stands in for it, copied where a clone would put it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.cluster.control_plane import ControlPlane
from tests.e2e.installation import (
    DEPLOY,
    FIELD_MANAGER,
    SYSTEM_NAMESPACE,
    install,
    kubectl,
    rendered,
)
from tests.unit.test_install_docs import FERRY_REMOTE, gitops_manifests

# Kinds whose controllers the test cluster does not run (their objects are checked in
# tests/unit/test_install_docs.py).
ELSEWHERE = {"SealedSecret", "ExternalSecret"}


@pytest.fixture(scope="module")
def installed(cluster: ControlPlane, cluster_bin_dir: Path) -> str:
    return install(cluster, cluster_bin_dir)


def test_the_team_kustomization_of_the_docs_builds_and_the_api_server_accepts_it(
    installed: str, cluster: ControlPlane, cluster_bin_dir: Path, tmp_path: Path,
    namespace: str,
) -> None:
    manifests = gitops_manifests()
    team = tmp_path / "shop-deploy" / "ferry"
    team.mkdir(parents=True)
    for path, manifest in manifests.items():
        if path.startswith("ferry/"):
            (tmp_path / "shop-deploy" / path).write_text(yaml.safe_dump_all(manifest.documents))
    [kustomization] = manifests["ferry/kustomization.yaml"].documents
    release = tmp_path / "ferry-release"
    resources = []
    for resource in kustomization["resources"]:
        match = FERRY_REMOTE.match(resource)
        if match:
            shutil.copytree(DEPLOY.parent / match["path"], release / match["path"])
        resources.append(f"../../ferry-release/{match['path']}" if match else resource)
    # The test's own namespace stands in for team-shop.
    kustomization |= {"resources": resources, "namespace": namespace}
    (team / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))

    objects = rendered(cluster_bin_dir, team)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["NetworkPolicy", "Repository", "RoleBinding", "RoleBinding",
                     "SealedSecret"], kinds
    assert {o["metadata"]["namespace"] for o in objects} == {namespace}
    for binding in (o for o in objects if o["kind"] == "RoleBinding"):
        # kustomize moved the bindings, not the ServiceAccounts they name.
        assert {s["namespace"] for s in binding["subjects"]} == {SYSTEM_NAMESPACE}

    served = [o for o in objects if o["kind"] not in ELSEWHERE]
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump_all(served))
    output = kubectl(cluster_bin_dir, "apply", "--server-side", "--dry-run=server",
                     f"--field-manager={FIELD_MANAGER}", "-f", str(path),
                     kubeconfig=cluster.kubeconfig)
    for line in ("repository.ferry.dev/shop",
                 "rolebinding.rbac.authorization.k8s.io/ferry-webhooks",
                 "rolebinding.rbac.authorization.k8s.io/ferry-controller",
                 "networkpolicy.networking.k8s.io/ferry-untrusted-runs"):
        assert f"{line} serverside-applied" in output, output
