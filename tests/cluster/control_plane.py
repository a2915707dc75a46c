"""etcd, kube-apiserver and kube-controller-manager on free loopback ports.

There is no kubelet and no scheduler: pods stay unscheduled unless the simulated kubelet
(``kubelet.py``) takes them. The controller-manager runs only what tests notice when it is
missing: default ServiceAccounts, namespace deletion, ownerReference garbage collection and
the ``kube-root-ca.crt`` ConfigMap that projected token volumes point at.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client
import yaml

from tests.cluster.certificates import ApiServerPki, make_pki
from tests.cluster.processes import Component, free_port, wait_until

CONTROLLERS = (
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
)

# Generous: a loaded 2-core CI machine can take tens of seconds to bring the API server up
# (it installs its own priority levels, RBAC bootstrap roles, ...). Normally it takes ~5 s.
API_SERVER_READY_SECONDS = 180.0
SERVICE_ACCOUNTS_READY_SECONDS = 120.0

ADMIN_USER = "ferry-test-admin"


@dataclass
class ControlPlane:
    """The API server side of the test cluster, started by ``start`` and stopped by ``stop``.

    ``kubeconfig`` authenticates as a ``system:masters`` member with a static token.
    """

    bin_dir: Path
    directory: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    components: list[Component] = field(default_factory=list)
    server: str = ""
    pki: ApiServerPki | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def ca_file(self) -> Path:
        assert self.pki is not None, "the control plane is not started"
        return self.pki.ca_cert

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pki = make_pki(self.directory / "pki")
        etcd = self._start_etcd()
        self._start_apiserver(etcd_url=etcd)
        self._write_kubeconfig()
        wait_until(
            self._api_server_ready,
            what=f"kube-apiserver /readyz at {self.server}",
            timeout=API_SERVER_READY_SECONDS,
            watching=self.components,
        )
        self._start_controller_manager()
        with self.api_client() as api:
            wait_until(
                lambda: _service_account_exists(api, "default", "default"),
                what="the controller-manager to create ServiceAccount default/default",
                timeout=SERVICE_ACCOUNTS_READY_SECONDS,
                watching=self.components,
            )

    def stop(self) -> None:
        """Stop components in reverse start order; safe to call twice or after a failed start."""
        for component in reversed(self.components):
            component.stop()

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new client authenticated as the admin; the caller closes it (``with`` works)."""
        configuration = kubernetes.client.Configuration()
        configuration.host = self.server
        configuration.ssl_ca_cert = str(self.ca_file)
        configuration.verify_ssl = True
        configuration.api_key = {"authorization": self.token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return kubernetes.client.ApiClient(configuration)

    # --- components --------------------------------------------------------------------

    def _component(self, name: str, argv: list[str]) -> Component:
        component = Component(name=name, argv=argv, log_path=self.logs_dir / f"{name}.log")
        self.components.append(component)
        component.start()
        return component

    def _start_etcd(self) -> str:
        client_port, peer_port = free_port(), free_port()
        client_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        etcd = self._component(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=ferry-test",
                f"--data-dir={self.directory / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=ferry-test={peer_url}",
                # The data is thrown away after the session; fsync only costs time.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        wait_until(
            lambda: _http_ok(f"{client_url}/health"),
            what=f"etcd /health at {client_url}",
            timeout=60,
            watching=[etcd],
        )
        return client_url

    def _start_apiserver(self, *, etcd_url: str) -> Component:
        assert self.pki is not None
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        tokens = self.directory / "tokens.csv"
        tokens.write_text(f'{self.token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        tokens.chmod(0o600)
        return self._component(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--tls-cert-file={self.pki.serving_cert}",
                f"--tls-private-key-file={self.pki.serving_key}",
                f"--cert-dir={self.directory / 'apiserver-certs'}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.pki.service_account_public_key}",
                f"--service-account-signing-key-file={self.pki.service_account_key}",
                "--allow-privileged=true",
                # The default reconciler publishes the advertise address as the endpoint of
                # Service "kubernetes", and 127.0.0.1 is refused there every 10 s.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
            ],
        )

    def _start_controller_manager(self) -> Component:
        assert self.pki is not None
        return self._component(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={','.join(CONTROLLERS)}",
                "--leader-elect=false",
                "--secure-port=0",  # no health endpoint needed, and no port to collide on
                f"--service-account-private-key-file={self.pki.service_account_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                "--use-service-account-credentials=false",
            ],
        )

    # --- readiness -----------------------------------------------------------------------

    def _api_server_ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return _http_ok(f"{self.server}/readyz", context=context, token=self.token)

    def _write_kubeconfig(self) -> None:
        ca_data = base64.b64encode(self.ca_file.read_bytes()).decode()
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "ferry-test",
                    "cluster": {"server": self.server, "certificate-authority-data": ca_data},
                }
            ],
            "users": [{"name": ADMIN_USER, "user": {"token": self.token}}],
            "contexts": [
                {"name": "ferry-test", "context": {"cluster": "ferry-test", "user": ADMIN_USER}}
            ],
            "current-context": "ferry-test",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)


def _http_ok(url: str, *, context: ssl.SSLContext | None = None, token: str = "") -> bool:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            status: int = response.status
            response.read()
            return status == 200
    except urllib.error.HTTPError as error:
        error.close()
        return False
    except (OSError, ssl.SSLError):  # refused, reset, timed out, not yet serving TLS
        return False


def _service_account_exists(api: kubernetes.client.ApiClient, namespace: str, name: str) -> bool:
    try:
        kubernetes.client.CoreV1Api(api).read_namespaced_service_account(name, namespace)
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def wait_for_service_account(
    api: kubernetes.client.ApiClient, namespace: str, *, name: str = "default"
) -> None:
    wait_until(
        lambda: _service_account_exists(api, namespace, name),
        what=f"ServiceAccount {namespace}/{name}",
        timeout=SERVICE_ACCOUNTS_READY_SECONDS,
    )


def elapsed(started: float) -> str:
    return f"{time.monotonic() - started:.1f}s"


def dumps(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
