"""Ferry installed on the test cluster the way users install it, run the way pods run it.

`kubectl apply --server-side -k deploy/` (with the kubectl built beside the API server by
tests/cluster/build) creates the namespace, ServiceAccounts, RBAC, CRD, Deployments. No
kubelet runs the Deployments' pods, so the receiver and the controller run here as local
processes instead, but with what a pod would have: a token of their own ServiceAccount (the
TokenRequest API, the same call the kubelet makes for a projected token), the cluster's CA,
the settings file both read from the ConfigMap, and each Deployment's arguments and
environment (the downward API's values filled in). Every API call they make is therefore
authorised by deploy/'s RBAC, and every setting they run with is deploy/'s, for real.
"""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cluster.control_plane import ControlPlane
from tests.cluster.processes import Component, free_port, wait_until
from tests.cluster.resources import Kube, KubeError, Obj

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TEAM_BINDINGS = DEPLOY / "team" / "rolebindings.yaml"
SYSTEM_NAMESPACE = "ferry-system"
WEBHOOKS_ACCOUNT = "ferry-webhooks"
CONTROLLER_ACCOUNT = "ferry-controller"
SETTINGS_CONFIG_MAP = "ferry-settings"
# Where the Deployments mount the ConfigMap; here it is a file in the run's directory.
SETTINGS_MOUNT = "/etc/ferry/"
FIELD_MANAGER = "ferry-install"
# The controller's name in the Lease: the same in every session and module, so a successor
# takes over at once from a predecessor that released the Lease.
CONTROLLER_IDENTITY = "e2e-controller"
# Generous bounds: the machine may be slow, and the suite must not depend on its speed.
START_SECONDS = 120.0
KUBECTL_SECONDS = 120.0


def kubectl_binary(bin_dir: Path) -> Path:
    """The kubectl that tests/cluster/build built with the same Kubernetes version."""
    binary = bin_dir / "kubectl"
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: run tests/cluster/build", pytrace=False)
    return binary


def kubectl(bin_dir: Path, *args: str, kubeconfig: Path | None = None) -> str:
    """Run kubectl; its stdout, or a failure showing its stderr."""
    argv = [str(kubectl_binary(bin_dir)), *args]
    if kubeconfig is not None:
        argv[1:1] = ["--kubeconfig", str(kubeconfig)]
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=KUBECTL_SECONDS, cwd=REPO
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def rendered(bin_dir: Path, directory: Path = DEPLOY) -> list[Obj]:
    """What `kubectl apply -k directory` would send: the kustomize build, as objects."""
    text = kubectl(bin_dir, "kustomize", str(directory))
    return [document for document in yaml.safe_load_all(text) if document]


def install(cluster: ControlPlane, bin_dir: Path) -> str:
    """`kubectl apply --server-side -k deploy/` as the cluster's admin; kubectl's output."""
    return kubectl(
        bin_dir, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-k", str(DEPLOY),
        kubeconfig=cluster.kubeconfig,
    )


def find(objects: Sequence[Obj], kind: str, name: str) -> Obj:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def service_account_token(kube: Kube, account: str, *, seconds: int = 3600) -> str:
    """A token for `account` in ferry-system, from the TokenRequest API."""
    answer = kube.request(
        "POST",
        f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts/{account}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        },
    )
    token: str = answer["status"]["token"]
    return token


def token_kubeconfig(cluster: ControlPlane, token: str, path: Path) -> Path:
    """A kubeconfig with `token` and the cluster's CA: what a pod's ServiceAccount gives."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {
            "server": cluster.server, "certificate-authority": str(cluster.ca_file)}}],
        "users": [{"name": "account", "user": {"token": token}}],
        "contexts": [{"name": "account", "context": {"cluster": "test", "user": "account"}}],
        "current-context": "account",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def invite(kube: Kube, namespace: str) -> None:
    """Apply deploy/team/rolebindings.yaml in `namespace`, as docs/install.md says."""
    for document in yaml.safe_load_all(TEAM_BINDINGS.read_text()):
        binding = copy.deepcopy(document)
        binding["metadata"]["namespace"] = namespace
        try:
            kube.create(binding)
        except KubeError as error:
            if error.status != 409:
                raise


def ferry_command() -> list[str]:
    """The `ferry` console script of this interpreter's environment (the image's ENTRYPOINT)."""
    script = Path(sys.executable).parent / "ferry"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from ci.cli import main; sys.exit(main())"]


@dataclass
class Installation:
    """The receiver and the controller running under their ServiceAccounts."""

    receiver: Component
    controller: Component
    receiver_url: str
    webhooks_kubeconfig: Path
    controller_kubeconfig: Path
    controller_metrics_url: str  # the controller's metrics server (its port's only page)

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        with httpx.Client(base_url=self.receiver_url, timeout=60.0) as client:
            return client.post("/hooks", content=body, headers=headers)

    def components(self) -> list[Component]:
        return [self.receiver, self.controller]


def _container(objects: Sequence[Obj], deployment: str) -> dict[str, Any]:
    [container] = find(objects, "Deployment", deployment)["spec"]["template"]["spec"][
        "containers"]
    return dict(container)


def _pod_environment(container: dict[str, Any]) -> dict[str, str]:
    """The container's declared variables, with what the downward API would fill in."""
    fields = {"metadata.name": CONTROLLER_IDENTITY, "metadata.namespace": SYSTEM_NAMESPACE}
    environment = {}
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = str(variable["value"])
        else:
            environment[variable["name"]] = fields[
                variable["valueFrom"]["fieldRef"]["fieldPath"]]
    return environment


def _arguments(container: dict[str, Any], directory: Path) -> list[str]:
    return [str(arg).replace(SETTINGS_MOUNT, f"{directory}/") for arg in container["args"]]


@contextlib.contextmanager
def running(cluster: ControlPlane, kube: Kube, bin_dir: Path, directory: Path, *,
            port: int | None = None, web: dict[str, Any] | None = None
            ) -> Iterator[Installation]:
    """Install deploy/, then run the receiver and the controller under its ServiceAccounts
    until the block ends. `port`: the receiver's (a free one if None); `web`: the settings
    file's `web` group (the pages' public URL and sign-in providers), added to deploy/'s."""
    install(cluster, bin_dir)
    objects = rendered(bin_dir)
    webhooks_kubeconfig = token_kubeconfig(
        cluster, service_account_token(kube, WEBHOOKS_ACCOUNT), directory / "webhooks.kubeconfig")
    controller_kubeconfig = token_kubeconfig(
        cluster, service_account_token(kube, CONTROLLER_ACCOUNT),
        directory / "controller.kubeconfig")
    settings_file = directory / "ferry.yaml"
    settings_text = find(objects, "ConfigMap", SETTINGS_CONFIG_MAP)["data"]["ferry.yaml"]
    if web is not None:
        settings_text += yaml.safe_dump({"web": web})
    settings_file.write_text(settings_text)
    port = port or free_port()
    # The file's 9090 may be taken on this machine.
    metrics_port = free_port()
    # Only what a pod would get: no KUBECONFIG or FERRY_* from the developer's shell.
    environment = {key: value for key, value in os.environ.items()
                   if key != "KUBECONFIG" and not key.startswith("FERRY_")}
    receiver_container = _container(objects, "ferry-webhooks")
    receiver = Component(
        name="ferry-webhooks",
        argv=[*ferry_command(), *_arguments(receiver_container, directory),
              "--host", "127.0.0.1", "--port", str(port)],
        log_path=directory / "webhooks.log",
        env={**environment, **_pod_environment(receiver_container),
             "FERRY_KUBERNETES_KUBECONFIG": str(webhooks_kubeconfig)},
        cwd=directory,
    )
    controller_container = _container(objects, "ferry-controller")
    controller = Component(
        name="ferry-controller",
        argv=[*ferry_command(), *_arguments(controller_container, directory)],
        log_path=directory / "controller.log",
        env={**environment, **_pod_environment(controller_container),
             "FERRY_KUBERNETES_KUBECONFIG": str(controller_kubeconfig),
             "FERRY_CONTROLLER_METRICS_PORT": str(metrics_port)},
        cwd=directory,
    )
    installation = Installation(
        receiver=receiver, controller=controller, receiver_url=f"http://127.0.0.1:{port}",
        webhooks_kubeconfig=webhooks_kubeconfig, controller_kubeconfig=controller_kubeconfig,
        controller_metrics_url=f"http://127.0.0.1:{metrics_port}/metrics")
    try:
        receiver.start()
        controller.start()
        wait_until(lambda: _ready(installation.receiver_url), what="the receiver's /readyz",
                   timeout=START_SECONDS, watching=[receiver])
        wait_until(lambda: '"controller running"' in controller.log_path.read_text(
            errors="replace"), what="the controller leading and watching",
            timeout=START_SECONDS, watching=[controller])
        yield installation
    finally:
        receiver.stop()
        controller.stop()


def _ready(url: str) -> bool:
    try:
        with httpx.Client(base_url=url, timeout=5.0) as client:
            return client.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False
