"""The image and the manifests, checked without a cluster or a container engine.

No engine runs here (nor on CI's machine), so the Containerfile cannot be built in tests;
these are the invariants a review would check. The manifests are applied to a real API
server in tests/integration/test_deploy.py.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import yaml

from ci.controller.settings import controller_settings
from ci.settings import load_settings
from pipelines.tekton import UNTRUSTED_LABEL

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "Containerfile"
BASE = REPO / "deploy" / "base"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    lines = [line for line in CONTAINERFILE.read_text().splitlines()
             if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(parts[0].upper(), parts[1] if len(parts) > 1 else "")
            for line in joined.splitlines() if (parts := line.strip().split(None, 1))]


def test_base_image_is_pinned_to_an_exact_version_or_digest() -> None:
    [argument] = [args for name, args in _instructions()
                  if name == "ARG" and args.startswith("PYTHON_IMAGE=")]
    image = argument.removeprefix("PYTHON_IMAGE=")
    assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+-slim", image), image
    stages = [args for name, args in _instructions() if name == "FROM"]
    assert len(stages) == 2 and all(s.startswith("${PYTHON_IMAGE}") for s in stages), stages


def test_final_stage_installs_the_wheel_and_runs_as_a_numeric_non_root_user() -> None:
    instructions = _instructions()
    final = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM"):]
    runs = " ".join(args for name, args in final if name == "RUN")
    assert "pip install --no-index" in runs and "/wheels" in runs
    [user] = [args for name, args in final if name == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    build = " ".join(args for name, args in instructions[:len(instructions) - len(final)])
    assert "pip wheel" in build
    assert [args for name, args in final if name == "ENTRYPOINT"] == ['["ferry"]']


def test_no_secret_reaches_the_image() -> None:
    text = CONTAINERFILE.read_text()
    assert not re.search(r"(?i)(token|password|secret|private.key)\s*=", text)
    copied = [args for name, args in _instructions() if name in ("COPY", "ADD")]
    assert all(not args.startswith(". ") for args in copied), "copy named paths, not ."
    # The build context starts empty and names what it lets in.
    ignore = [line for line in (REPO / ".containerignore").read_text().splitlines()
              if line and not line.startswith("#")]
    assert ignore[0] == "*"
    assert not [line for line in ignore if line.startswith("!") and "test" in line]


def _documents() -> list[dict[str, Any]]:
    return [document for path in sorted(BASE.glob("*.yaml"))
            for document in yaml.safe_load_all(path.read_text()) if document]


def test_every_container_is_locked_down_and_probed() -> None:
    deployments = [d for d in _documents() if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"ferry-webhooks", "ferry-controller"}
    for deployment in deployments:
        spec = deployment["spec"]
        assert spec["replicas"] == 2
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            # Images come only through kustomize's `images:` entry.
            assert container["image"] == "ferry"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert container["readinessProbe"] and container["livenessProbe"]
            assert set(container["resources"]) == {"requests", "limits"}
    [webhooks] = [d for d in deployments if d["metadata"]["name"] == "ferry-webhooks"]
    [container] = webhooks["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_no_rule_grants_wildcards_or_secrets_cluster_wide() -> None:
    documents = _documents()
    cluster_bound = {d["roleRef"]["name"] for d in documents if d["kind"] == "ClusterRoleBinding"}
    for role in (d for d in documents if d["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], role
            if role["metadata"]["name"] in cluster_bound:
                # Cluster-wide grants are reads of Ferry's and Tekton's kinds, never Secrets.
                assert set(rule["verbs"]) <= {"list", "watch"}, role
                assert "secrets" not in rule["resources"], role


def test_both_components_read_one_settings_file_that_loads(tmp_path: Path) -> None:
    documents = _documents()
    [config_map] = [d for d in documents if d["kind"] == "ConfigMap"]
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    for name, component in (("ferry-webhooks", "webhooks"), ("ferry-controller", "controller")):
        pod = deployments[name]["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["args"] == ["serve", component, "--config", "/etc/ferry/ferry.yaml"]
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/ferry"]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    settings_file = tmp_path / "ferry.yaml"
    settings_file.write_text(config_map["data"]["ferry.yaml"])
    # What the downward API gives the controller's pod, as the variables it declares.
    [controller] = deployments["ferry-controller"]["spec"]["template"]["spec"]["containers"]
    pod_fields = {"metadata.name": "ferry-controller-abc12", "metadata.namespace": "ferry-system"}
    environ = {variable["name"]: pod_fields[variable["valueFrom"]["fieldRef"]["fieldPath"]]
               for variable in controller["env"]}
    assert all(name.startswith(("FERRY_CONTROLLER_", "FERRY_KUBERNETES_BINDING_"))
               for name in environ)
    settings = load_settings(environ=environ, config_file=settings_file)
    mapped = controller_settings(settings)
    assert mapped.identity == "ferry-controller-abc12"
    assert (mapped.leader.namespace, mapped.leader.name) == ("ferry-system", "ferry-controller")
    # The binding key's Secret is in the pod's own namespace, for both components: the one
    # the RBAC lets them read (binding-key-rbac.yaml).
    assert mapped.kubernetes.binding_secret_namespace == "ferry-system"
    [webhooks] = deployments["ferry-webhooks"]["spec"]["template"]["spec"]["containers"]
    assert {variable["name"]: variable["valueFrom"]["fieldRef"]["fieldPath"]
            for variable in webhooks["env"]} == {
        "FERRY_KUBERNETES_BINDING_SECRET_NAMESPACE": "metadata.namespace"}
    [key_role] = [d for d in documents if d["kind"] == "Role"
                  and d["metadata"]["name"] == "ferry-binding-key"]
    assert {tuple(rule.get("resourceNames", ())) for rule in key_role["rules"]
            if "get" in rule["verbs"]} == {(mapped.kubernetes.binding_secret_name,)}
    # The port the controller's probes ask for.
    assert str(mapped.metrics_port) in {
        str(port["containerPort"]) for port in controller["ports"]}
    assert controller["readinessProbe"]["httpGet"]["port"] == "metrics"


UNTRUSTED_POLICY = REPO / "deploy" / "team" / "untrusted-runs-network-policy.yaml"
KUBE_DNS = {"namespace": {"kubernetes.io/metadata.name": "kube-system"},
            "pod": {"k8s-app": "kube-dns"}}


def _egress_allowed(policy: dict[str, Any], *, address: str, port: int, protocol: str = "TCP",
                    peer: dict[str, dict[str, str]] | None = None) -> bool:
    """Whether `policy`'s egress rules let a selected pod reach `address:port` (a pod with
    `peer` labels when given), by NetworkPolicy's rules: any rule, any of its peers, any of
    its ports; an ipBlock matches inside `cidr` and outside every `except`."""
    destination = ipaddress.ip_address(address)

    def peer_matches(entry: dict[str, Any]) -> bool:
        if "ipBlock" in entry:
            block = entry["ipBlock"]
            network = ipaddress.ip_network(block["cidr"])
            if destination.version != network.version or destination not in network:
                return False
            return not any(destination in ipaddress.ip_network(cidr)
                           for cidr in block.get("except", []))
        if peer is None:
            return False
        wanted_namespace = entry.get("namespaceSelector", {}).get("matchLabels", {})
        wanted_pod = entry.get("podSelector", {}).get("matchLabels", {})
        return (wanted_namespace.items() <= peer["namespace"].items()
                and wanted_pod.items() <= peer["pod"].items())

    for rule in policy["spec"]["egress"]:
        ports = rule.get("ports")
        if ports and not any(p["port"] == port and p.get("protocol", "TCP") == protocol
                             for p in ports):
            continue
        if any(peer_matches(entry) for entry in rule.get("to", [])):
            return True
    return False


def test_untrusted_runs_reach_the_internet_and_dns_but_nothing_inside_the_cluster() -> None:
    [policy] = [d for d in yaml.safe_load_all(UNTRUSTED_POLICY.read_text()) if d]
    assert policy["kind"] == "NetworkPolicy" and "namespace" not in policy["metadata"]
    # It selects exactly what the compiler labels untrusted runs with.
    assert policy["spec"]["podSelector"] == {"matchLabels": {UNTRUSTED_LABEL: "true"}}
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in policy["spec"]  # with policyTypes Ingress: no one may connect
    allowed = [("140.82.112.3", 443), ("151.101.0.223", 443), ("2606:50c0:8000::153", 443)]
    for address, port in allowed:  # github.com, pypi.org over IPv4 and IPv6
        assert _egress_allowed(policy, address=address, port=port), address
    denied = [
        "10.96.0.1",  # the API server's Service in most clusters
        "10.0.0.12", "172.16.5.4", "172.31.255.255", "192.168.1.10",  # pods, nodes, Services
        "100.64.0.10",  # shared address space some clusters use for pods
        "169.254.169.254",  # cloud metadata: node credentials
        "127.0.0.1", "fd00::1", "fe80::1", "::1",
    ]
    for address in denied:
        for port in (443, 6443, 53, 80):
            assert not _egress_allowed(policy, address=address, port=port), (address, port)
    # DNS: kube-dns pods on 53, nothing else of them.
    for protocol in ("UDP", "TCP"):
        assert _egress_allowed(policy, address="10.96.0.10", port=53, protocol=protocol,
                               peer=KUBE_DNS)
    assert not _egress_allowed(policy, address="10.96.0.10", port=8080, peer=KUBE_DNS)
    other_pod = {"namespace": {"kubernetes.io/metadata.name": "kube-system"},
                 "pod": {"component": "kube-apiserver"}}
    assert not _egress_allowed(policy, address="10.0.0.2", port=53, protocol="UDP",
                               peer=other_pod)


def test_the_controller_archives_to_the_volume_it_mounts(tmp_path: Path) -> None:
    documents = _documents()
    [config_map] = [d for d in documents if d["kind"] == "ConfigMap"]
    [claim] = [d for d in documents if d["kind"] == "PersistentVolumeClaim"]
    # Both replicas mount it (the standby too, ready to take over).
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["metadata"]["namespace"] == "ferry-system"
    [controller] = [d for d in documents if d["kind"] == "Deployment"
                    and d["metadata"]["name"] == "ferry-controller"]
    pod = controller["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert not mount.get("readOnly")
    # Written as the pod's group: the volume is the only writable place besides /tmp.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    settings_file = tmp_path / "ferry.yaml"
    settings_file.write_text(config_map["data"]["ferry.yaml"])
    archive = controller_settings(load_settings(environ={}, config_file=settings_file)).archive
    assert archive is not None and archive.directory == Path(mount["mountPath"])
    # Retention as docs/logs.md states it.
    assert archive.retention.max_age_days == 90
    assert archive.retention.max_bytes_per_repository == 10 * 1024**3
