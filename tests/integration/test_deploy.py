"""deploy/ on the real API server: `kubectl apply --server-side -k deploy/` succeeds, what it
declared is what the server holds, and each ServiceAccount may do exactly what its code calls.

The Deployments never get pods here (no scheduler, and the simulated kubelet runs only what
Tekton creates); tests/e2e runs the same programs as local processes with these accounts'
tokens and shows the whole flow works under this RBAC.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci.controller.settings import controller_settings
from ci.kube.connecting import api_client
from ci.settings import KubernetesSettings, load_settings
from pipelines.tekton import UNTRUSTED_LABEL
from tests.cluster.control_plane import ControlPlane
from tests.cluster.resources import Kube, KubeError, Obj, collection_path, object_path
from tests.e2e.installation import (
    CONTROLLER_ACCOUNT,
    DEPLOY,
    FIELD_MANAGER,
    SYSTEM_NAMESPACE,
    WEBHOOKS_ACCOUNT,
    find,
    install,
    invite,
    kubectl,
    rendered,
    service_account_token,
    token_kubeconfig,
)

Rule = tuple[str, str, str, str]  # (API group, resource, verb, resource name or "")
# What every authenticated user may do (system:basic-user): ask what it may do.
_SELF_REVIEWS = frozenset({"authorization.k8s.io", "authentication.k8s.io"})


def _rules(*entries: tuple[str, list[str], list[str]], names: tuple[str, ...] = ("",)
           ) -> set[Rule]:
    return {(group, resource, verb, name)
            for group, resources, verbs in entries
            for resource in resources for verb in verbs for name in names}


# Read from the code (ci/kube/*, ci/controller/app.py, webhooks/wiring.py), not from deploy/:
# the test fails when the RBAC grants more, or less, than the programs call.
WEBHOOKS_EVERYWHERE = _rules(("ferry.dev", ["repositories", "runrequests"], ["list", "watch"]))
WEBHOOKS_IN_TEAM = WEBHOOKS_EVERYWHERE | _rules(
    ("tekton.dev", ["pipelineruns"], ["create", "get", "list", "patch"]),
    # Which jobs of a run failed (/retest), which pod each step is in (the read API).
    ("tekton.dev", ["taskruns"], ["list"]),
    ("", ["secrets"], ["get", "create"]),
    ("ferry.dev", ["repositories/status", "runrequests/status"], ["patch"]),
    # The read API (webhooks/api/): a running step's log.
    ("", ["pods/log"], ["get"]),
)
CONTROLLER_EVERYWHERE = _rules(
    ("ferry.dev", ["repositories"], ["list", "watch"]),
    ("tekton.dev", ["pipelineruns", "taskruns"], ["list", "watch"]),
)
CONTROLLER_IN_TEAM = CONTROLLER_EVERYWHERE | _rules(
    ("tekton.dev", ["pipelineruns"], ["get", "patch", "delete"]),
    ("", ["secrets", "pods/log"], ["get"]),
    ("ferry.dev", ["runrequests"], ["create"]),
    ("ferry.dev", ["repositories/status"], ["patch"]),
)
# The binding key (ci/kube/binding_keys.py): read by its name only, created if absent.
BINDING_KEY = (_rules(("", ["secrets"], ["create"]))
               | _rules(("", ["secrets"], ["get"]), names=("ferry-binding-key",)))
WEBHOOKS_IN_SYSTEM = WEBHOOKS_EVERYWHERE | BINDING_KEY
CONTROLLER_IN_SYSTEM = (
    CONTROLLER_EVERYWHERE
    | BINDING_KEY
    | _rules(("coordination.k8s.io", ["leases"], ["create"]))
    | _rules(("coordination.k8s.io", ["leases"], ["get", "update"]), names=("ferry-controller",))
)


@pytest.fixture(scope="module")
def installed(cluster: ControlPlane, cluster_bin_dir: Path) -> str:
    return install(cluster, cluster_bin_dir)


@pytest.fixture(scope="module")
def accounts(installed: str, cluster: ControlPlane, kube: Kube,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Kube]]:
    """A JSON client per ServiceAccount, authenticated with its own token."""
    directory = tmp_path_factory.mktemp("accounts")
    clients = {}
    for account in (WEBHOOKS_ACCOUNT, CONTROLLER_ACCOUNT):
        path = token_kubeconfig(cluster, service_account_token(kube, account),
                                directory / f"{account}.kubeconfig")
        clients[account] = Kube(api_client(KubernetesSettings(kubeconfig=path)))
    yield clients
    for client in clients.values():
        client.api_client.close()


def _contains(live: Any, declared: Any, where: str = "") -> list[str]:
    """Where `live` lacks or differs from what `declared` says (the server adds defaults)."""
    if isinstance(declared, dict):
        if not isinstance(live, dict):
            return [f"{where}: {live!r} is not a mapping"]
        return [problem for key, value in declared.items()
                for problem in _contains(live.get(key), value, f"{where}.{key}")]
    if isinstance(declared, list):
        if not isinstance(live, list) or len(live) != len(declared):
            return [f"{where}: {live!r} != {declared!r}"]
        return [problem for index, (have, want) in enumerate(zip(live, declared, strict=True))
                for problem in _contains(have, want, f"{where}[{index}]")]
    return [] if live == declared or str(live) == str(declared) else [
        f"{where}: {live!r} != {declared!r}"]


def test_apply_server_side_creates_every_object_as_declared(
    installed: str, cluster: ControlPlane, cluster_bin_dir: Path, kube: Kube
) -> None:
    objects = rendered(cluster_bin_dir)
    assert {o["kind"] for o in objects} >= {
        "CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole",
        "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service",
        "PodDisruptionBudget", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    problems = []
    for declared in objects:
        live = kube.get(object_path(declared))
        problems += _contains(live, declared, f"{declared['kind']}/{declared['metadata']['name']}")
    assert not problems, "\n".join(problems)
    # Applying again is a no-op that succeeds: upgrades are the same command.
    again = install(cluster, cluster_bin_dir)
    assert "serverside-applied" in again
    webhooks = kube.get(f"/apis/apps/v1/namespaces/{SYSTEM_NAMESPACE}/deployments/ferry-webhooks")
    assert webhooks["spec"]["replicas"] == 2
    assert webhooks["spec"]["template"]["spec"]["serviceAccountName"] == WEBHOOKS_ACCOUNT


def test_the_ingress_overlay_is_accepted_by_the_api_server(
    installed: str, cluster: ControlPlane, cluster_bin_dir: Path
) -> None:
    overlay = DEPLOY / "overlays" / "ingress-example"
    [ingress] = [o for o in rendered(cluster_bin_dir, overlay) if o["kind"] == "Ingress"]
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == ["/hooks"]
    output = kubectl(cluster_bin_dir, "apply", "--server-side", "--dry-run=server",
                     f"--field-manager={FIELD_MANAGER}", "-k", str(overlay),
                     kubeconfig=cluster.kubeconfig)
    assert "ingress.networking.k8s.io/ferry-webhooks serverside-applied" in output


def test_the_s3_logs_overlay_archives_to_a_bucket_and_drops_the_volume(
    installed: str, cluster: ControlPlane, cluster_bin_dir: Path, tmp_path: Path
) -> None:
    overlay = DEPLOY / "overlays" / "s3-logs"
    objects = rendered(cluster_bin_dir, overlay)
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    [config_map] = [o for o in objects if o["kind"] == "ConfigMap"]
    controller = find(objects, "Deployment", "ferry-controller")
    pod = controller["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    [container] = pod["containers"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/etc/ferry", "/tmp"}
    # The settings the pod starts with: the file, then its variables (Secrets resolved).
    secrets = {"access-key-id": "AKIAEXAMPLE", "secret-access-key": "example-secret"}
    environ = {}
    for variable in container["env"]:
        source = variable.get("valueFrom", {})
        if "secretKeyRef" in source:
            environ[variable["name"]] = secrets[source["secretKeyRef"]["key"]]
        elif "value" in variable:
            environ[variable["name"]] = variable["value"]
    settings_file = tmp_path / "ferry.yaml"
    settings_file.write_text(config_map["data"]["ferry.yaml"])
    archive = controller_settings(load_settings(environ=environ,
                                                config_file=settings_file)).archive
    assert archive is not None and archive.directory is None and archive.s3 is not None
    assert (archive.s3.bucket, archive.s3.access_key_id) == ("ci-logs", "AKIAEXAMPLE")
    output = kubectl(cluster_bin_dir, "apply", "--server-side", "--dry-run=server",
                     f"--field-manager={FIELD_MANAGER}", "-k", str(overlay),
                     kubeconfig=cluster.kubeconfig)
    assert "deployment.apps/ferry-controller serverside-applied" in output


def test_the_untrusted_runs_network_policy_applies_server_side_in_a_team_namespace(
    cluster: ControlPlane, cluster_bin_dir: Path, kube: Kube, namespace: str
) -> None:
    # As docs/install.md says: beside the RoleBindings, with the team's namespace set.
    path = DEPLOY / "team" / "untrusted-runs-network-policy.yaml"
    for _ in range(2):  # applying again (an upgrade) is the same command, and succeeds
        output = kubectl(cluster_bin_dir, "apply", "--server-side",
                         f"--field-manager={FIELD_MANAGER}", "-n", namespace, "-f", str(path),
                         kubeconfig=cluster.kubeconfig)
        assert "networkpolicy.networking.k8s.io/ferry-untrusted-runs serverside-applied" in output
    [declared] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    live = kube.get(f"/apis/networking.k8s.io/v1/namespaces/{namespace}"
                    "/networkpolicies/ferry-untrusted-runs")
    assert not _contains(live, declared, "NetworkPolicy"), _contains(live, declared)
    assert live["spec"]["podSelector"]["matchLabels"] == {UNTRUSTED_LABEL: "true"}


def _granted(client: Kube, namespace: str) -> set[Rule]:
    """Every (group, resource, verb, name) the caller may use in `namespace`, from the API
    server's own SelfSubjectRulesReview."""
    review = client.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                            body={"apiVersion": "authorization.k8s.io/v1",
                                  "kind": "SelfSubjectRulesReview",
                                  "spec": {"namespace": namespace}})
    granted: set[Rule] = set()
    for rule in review["status"]["resourceRules"]:
        if set(rule.get("apiGroups", [])) & _SELF_REVIEWS:
            continue
        granted |= _rules(*[(group, rule["resources"], rule["verbs"])
                            for group in rule["apiGroups"]],
                          names=tuple(rule.get("resourceNames") or ("",)))
    return granted


def test_each_account_may_do_exactly_what_its_code_calls(
    accounts: dict[str, Kube], kube: Kube, namespace: str
) -> None:
    invite(kube, namespace)
    uninvited = "default"
    webhooks, controller = accounts[WEBHOOKS_ACCOUNT], accounts[CONTROLLER_ACCOUNT]
    assert _granted(webhooks, namespace) == WEBHOOKS_IN_TEAM
    assert _granted(webhooks, uninvited) == WEBHOOKS_EVERYWHERE
    assert _granted(webhooks, SYSTEM_NAMESPACE) == WEBHOOKS_IN_SYSTEM
    assert _granted(controller, namespace) == CONTROLLER_IN_TEAM
    assert _granted(controller, uninvited) == CONTROLLER_EVERYWHERE
    assert _granted(controller, SYSTEM_NAMESPACE) == CONTROLLER_IN_SYSTEM
    # The read API's two questions (system:auth-delegator; the review groups are left out of
    # `_granted`, since every account may review itself).
    reviewed = webhooks.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": "not-a-token"}})
    assert reviewed["status"].get("authenticated") is not True
    access = webhooks.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "someone", "resourceAttributes": {
            "namespace": namespace, "verb": "get", "group": "tekton.dev",
            "resource": "pipelineruns"}}})
    assert access["status"]["allowed"] is False


def _refused(client: Kube, method: str, path: str, body: Obj | None = None) -> bool:
    try:
        client.request(method, path, body=body,
                       content_type="application/merge-patch+json" if method == "PATCH"
                       else "application/json")
    except KubeError as error:
        return error.status == 403
    return False


def test_each_account_is_refused_what_it_must_not_do(
    accounts: dict[str, Kube], kube: Kube, namespace: str
) -> None:
    invite(kube, namespace)
    other = "default"  # a namespace that never invited Ferry
    kube.create({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "database", "namespace": namespace},
                 "stringData": {"password": "hunter2"}})
    secrets_of = collection_path("v1", "Secret", namespace)
    deployments = collection_path("apps/v1", "Deployment", namespace)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "miner", "namespace": namespace},
                  "spec": {"selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "m", "image": "m"}]}}}}
    repositories = f"/apis/ferry.dev/v1alpha1/namespaces/{namespace}/repositories"
    task_runs = f"/apis/tekton.dev/v1/namespaces/{namespace}/taskruns"
    lease = f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM_NAMESPACE}/leases"
    team_lease = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/ferry-controller"
    system_secrets = collection_path("v1", "Secret", SYSTEM_NAMESPACE)
    # The binding key: read by name, never listed, changed or deleted, nor anything beside.
    key_refusals = [
        ("GET", system_secrets),
        ("GET", f"{system_secrets}/another-secret"),
        ("PATCH", f"{system_secrets}/ferry-binding-key", {"data": {"key": "AAAA"}}),
        ("DELETE", f"{system_secrets}/ferry-binding-key"),
    ]
    refusals = {
        WEBHOOKS_ACCOUNT: [
            ("GET", f"/api/v1/namespaces/{other}/secrets/anything"),
            ("GET", collection_path("v1", "Secret", other)),
            ("GET", secrets_of),  # reading by name, yes; listing a namespace's Secrets, no
            ("DELETE", f"{secrets_of}/database"),
            ("DELETE", f"{repositories}/app"),
            # Its status, yes; its spec (where a run's secrets and URL come from), no.
            ("PATCH", f"{repositories}/app", {"spec": {"url": "https://example.com/x/y"}}),
            ("PATCH", f"/apis/ferry.dev/v1alpha1/namespaces/{other}/repositories/app/status",
             {"status": {}}),
            ("POST", deployments, deployment),
            ("PATCH", f"{task_runs}/anything", {"spec": {"status": "TaskRunCancelled"}}),
            ("DELETE", f"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns/anything"),
            # A step's log for the read API in invited namespaces only; never the pods.
            ("GET", f"/api/v1/namespaces/{other}/pods/anything/log"),
            ("GET", f"/api/v1/namespaces/{namespace}/pods/anything"),
            ("GET", f"{lease}/ferry-controller"),
            *key_refusals,
        ],
        CONTROLLER_ACCOUNT: [
            ("GET", f"/api/v1/namespaces/{other}/secrets/anything"),
            ("GET", secrets_of),
            ("POST", secrets_of, {"apiVersion": "v1", "kind": "Secret",
                                  "metadata": {"name": "x", "namespace": namespace}}),
            ("DELETE", f"{repositories}/app"),
            ("POST", deployments, deployment),
            ("POST", f"/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns",
             {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
              "metadata": {"name": "x", "namespace": namespace}, "spec": {}}),
            ("PATCH", f"{task_runs}/anything", {"spec": {"status": "TaskRunCancelled"}}),
            ("GET", f"{lease}/someone-elses-lease"),
            ("PATCH", team_lease, {"spec": {}}),
            ("DELETE", f"/apis/tekton.dev/v1/namespaces/{other}/pipelineruns/anything"),
            *key_refusals,
        ],
    }
    allowed = [f"{account}: {call[0]} {call[1]}" for account, calls in refusals.items()
               for call in calls if not _refused(accounts[account], *call)]
    assert not allowed, "not refused:\n" + "\n".join(allowed)
    # What they may do is really possible with the same tokens.
    assert accounts[WEBHOOKS_ACCOUNT].get(f"{secrets_of}/database")["metadata"]["name"]
    assert accounts[CONTROLLER_ACCOUNT].get(f"{secrets_of}/database")["metadata"]["name"]
    assert accounts[WEBHOOKS_ACCOUNT].get(repositories)["items"] == []
