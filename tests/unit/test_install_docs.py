"""docs/install.md's GitOps and monitoring manifests: each is YAML of a kind and version its
controller serves, names paths that exist in deploy/, and the Secret the Repository names is
the one Sealed Secrets or External Secrets writes, with the keys Ferry reads.

tests/integration/test_deploy.py builds the team's kustomization from these same blocks with
kustomize and applies it to a real API server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ci.kube.repositories import Repository

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "docs" / "install.md"
# What each manifest may be: the API versions Argo CD, Flux, Sealed Secrets, External Secrets,
# kustomize and Ferry serve today.
KINDS = {
    ("argoproj.io/v1alpha1", "Application"),
    ("source.toolkit.fluxcd.io/v1", "GitRepository"),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    ("bitnami.com/v1alpha1", "SealedSecret"),
    ("external-secrets.io/v1", "ExternalSecret"),
    ("ferry.dev/v1alpha1", "Repository"),
}
FERRY_REMOTE = re.compile(
    r"^https://github\.com/ferry-ci/ferry\.git//(?P<path>deploy/[a-z/-]+)\?ref=v\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class Manifest:
    path: str  # the file it is in, as its first comment says
    documents: list[dict[str, Any]]


def _section(title: str) -> str:
    text = INSTALL.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def yaml_blocks(title: str) -> list[str]:
    return re.findall(r"^ *```yaml\n(.*?)^ *```$", _section(title), re.DOTALL | re.MULTILINE)


def gitops_manifests() -> dict[str, Manifest]:
    """The section's manifests by file, each block opening with `# <file>, in the ...`."""
    manifests = {}
    for block in yaml_blocks("Installing with GitOps (Argo CD or Flux)"):
        match = re.match(r"# (?P<path>[\w./-]+), in the (platform|team)'s repository\n", block)
        assert match, f"a block without its file name:\n{block}"
        documents = [d for d in yaml.safe_load_all(block) if d]
        manifests[match["path"]] = Manifest(match["path"], documents)
    return manifests


def _all(kind: str) -> list[dict[str, Any]]:
    return [d for m in gitops_manifests().values() for d in m.documents if d["kind"] == kind]


def test_every_manifest_is_of_a_served_kind_and_version() -> None:
    manifests = gitops_manifests()
    assert len(manifests) >= 8
    for manifest in manifests.values():
        for document in manifest.documents:
            assert (document["apiVersion"], document["kind"]) in KINDS, manifest.path
            if document["apiVersion"] != "kustomize.config.k8s.io/v1beta1":  # kustomize's own
                assert re.fullmatch(r"[a-z0-9-]+", document["metadata"]["name"]), manifest.path


def test_ferry_is_installed_from_a_kustomization_in_deploy_at_a_release_tag() -> None:
    [argo] = [a for a in _all("Application") if a["metadata"]["name"] == "ferry"]
    flux = {k["metadata"]["name"]: k for k in _all("Kustomization")
            if k["apiVersion"].startswith("kustomize.toolkit.fluxcd.io")}
    sources = {g["metadata"]["name"]: g for g in _all("GitRepository")}
    paths = [argo["spec"]["source"]["path"], flux["ferry"]["spec"]["path"].removeprefix("./")]
    for path in paths:
        assert (ROOT / path / "kustomization.yaml").is_file(), path
        assert path.startswith("deploy")
    assert argo["spec"]["source"]["targetRevision"] == sources["ferry"]["spec"]["ref"]["tag"]
    # Ferry's manifests are applied server-side, as `kubectl apply --server-side` does.
    assert "ServerSideApply=true" in argo["spec"]["syncPolicy"]["syncOptions"]
    # The image is set where kustomize's `images:` would set it: the name every container uses.
    [image] = argo["spec"]["source"]["kustomize"]["images"]
    assert image.startswith("ferry=")
    assert [i["name"] for i in flux["ferry"]["spec"]["images"]] == ["ferry"]
    for kustomization in flux.values():
        assert kustomization["spec"]["sourceRef"]["name"] in sources
        assert kustomization["spec"]["sourceRef"]["kind"] == "GitRepository"
    # The team's waits for Ferry's CRD.
    assert flux["ferry-team-shop"]["spec"]["dependsOn"] == [{"name": "ferry"}]


def test_the_team_kustomization_lists_the_files_shown_and_ferrys_deploy_team() -> None:
    manifests = gitops_manifests()
    [kustomization] = manifests["ferry/kustomization.yaml"].documents
    local = [r for r in kustomization["resources"] if not r.startswith("https://")]
    remote = [r for r in kustomization["resources"] if r.startswith("https://")]
    assert {f"ferry/{name}" for name in local} <= manifests.keys()
    [ferry] = remote
    match = FERRY_REMOTE.match(ferry)
    assert match and (ROOT / match["path"] / "kustomization.yaml").is_file(), ferry
    # The team's Argo CD Application points at that directory.
    [team] = [a for a in _all("Application") if a["metadata"]["name"] == "ferry-team-shop"]
    assert team["spec"]["source"]["path"] == "ferry"
    assert team["spec"]["destination"]["namespace"] == kustomization["namespace"]


def test_the_repository_is_valid_for_the_crd_and_its_secret_is_written_with_ferrys_keys() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "repository.yaml").read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["served"]]
    [repository] = _all("Repository")
    assert repository["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    jsonschema.validate(repository["spec"],
                        version["schema"]["openAPIV3Schema"]["properties"]["spec"])
    # The keys as Ferry reads them from this Repository (its own parser, defaults included).
    read = Repository.from_object(repository)
    secret_name = read.secret.name
    wanted = {read.secret.webhook_secret_key,
              read.secret.private_key_key if read.github_app else read.secret.token_key}
    [sealed] = _all("SealedSecret")
    assert sealed["metadata"]["name"] == sealed["spec"]["template"]["metadata"]["name"]
    assert sealed["metadata"]["name"] == secret_name
    assert set(sealed["spec"]["encryptedData"]) == wanted
    [external] = _all("ExternalSecret")
    assert external["spec"]["target"]["name"] == secret_name
    assert {entry["secretKey"] for entry in external["spec"]["data"]} == wanted
    # Ferry reads the Secret as it is: no format of its own.
    assert sealed["spec"]["template"]["type"] == "Opaque"


def test_the_monitoring_sections_patches_are_yaml_kustomize_can_take() -> None:
    blocks = [yaml.safe_load(block) for block in yaml_blocks("Monitoring")]
    assert blocks
    for block in blocks:
        for patch in block["patches"]:
            assert patch["target"]
            operations = yaml.safe_load(patch["patch"])
            assert all(op["op"] in {"add", "replace"} and op["path"].startswith("/")
                       for op in operations)


def test_the_monitoring_sections_table_lists_every_alert_with_its_severity() -> None:
    [rule] = [d for d in yaml.safe_load_all(
        (ROOT / "deploy" / "monitoring" / "alerts.yaml").read_text()) if d]
    alerts = [(a["alert"], a["labels"]["severity"])
              for group in rule["spec"]["groups"] for a in group["rules"]]
    documented = re.findall(r"^\| `(Ferry\w+)` \| (\w+) \|", _section("Monitoring"), re.MULTILINE)
    assert documented == alerts
