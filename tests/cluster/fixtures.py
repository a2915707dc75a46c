"""The pytest plugin that starts the test cluster (registered in ``tests/conftest.py``).

Fixtures, from cheapest to dearest:

``cluster`` (session)
    The started ``ControlPlane``: etcd + kube-apiserver + kube-controller-manager, with
    Tekton's and Ferry's CRDs installed. ``cluster.kubeconfig`` is a kubeconfig file (admin),
    ``cluster.api_client()`` makes a new ``kubernetes.client.ApiClient``.
``kube`` (session)
    A ``Kube`` (JSON requests: ``get``, ``create``, ``delete``, ``merge_patch``, ``request``);
    ``kube.api_client`` is the ``kubernetes.client.ApiClient`` for the typed APIs.
``namespace`` (function)
    A fresh namespace whose ``default`` ServiceAccount exists; deleted afterwards.
``tekton`` (session)
    The real Tekton controller, running and proven to reconcile.
``kubelet`` (session)
    The ``SimulatedKubelet`` that completes pods (see ``kubelet.py`` for how a test chooses
    each step's outcome).

Tests that use them are marked ``cluster`` automatically. The cluster starts once per session,
when the first test that needs it runs; its processes' logs are in the session's temp dir and
their tails are attached to the report of every failing cluster test.
"""

from __future__ import annotations

import re
import secrets
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cluster.control_plane import ControlPlane, wait_for_service_account
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.processes import Component, built_path, tail
from tests.cluster.resources import Kube
from tests.cluster.tekton import TektonController, ensure_namespace, install_crds

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tests" / "cluster" / "build"
FERRY_CRDS = REPO / "crds"
CLUSTER_FIXTURES = frozenset({"cluster", "kube", "namespace", "tekton", "kubelet"})
TEST_NAMESPACE_LABEL = "ferry.dev/test-namespace"


@dataclass
class _SessionState:
    """What the report hooks need to know about the session's cluster."""

    components: list[Component] = field(default_factory=list)
    extra_logs: list[Path] = field(default_factory=list)
    timings: list[str] = field(default_factory=list)


_state_key = pytest.StashKey[_SessionState]()


def _state(config: pytest.Config) -> _SessionState:
    if _state_key not in config.stash:
        config.stash[_state_key] = _SessionState()
    return config.stash[_state_key]


def _announce(config: pytest.Config, message: str) -> None:
    """Print past pytest's output capture: startup times belong on the terminal."""
    _state(config).timings.append(message)
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            sys.stderr.write(f"\n[cluster] {message}\n")
            sys.stderr.flush()


# --- hooks ------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not report.failed or not CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
        return report
    state = _state(item.config)
    for component in state.components:
        report.sections.append(
            (f"cluster log: {component.name} ({component.log_path})", tail(component.log_path))
        )
    for path in state.extra_logs:
        report.sections.append((f"cluster log: {path.name} ({path})", tail(path)))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    timings = _state(terminalreporter.config).timings
    if timings:
        terminalreporter.write_sep("-", "test cluster")
        for line in timings:
            terminalreporter.write_line(line)


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cluster_bin_dir() -> Path:
    """``$FERRY_CLUSTER_BIN`` (set by tests/run), else whatever ``tests/cluster/build`` prints.

    Never skips: a missing toolchain is a failure that says what to install.
    """
    bin_dir = built_path(BUILD_SCRIPT, "FERRY_CLUSTER_BIN")
    missing = [
        name
        for name in ("etcd", "kube-apiserver", "kube-controller-manager", "tekton-controller")
        if not (bin_dir / name).is_file()
    ]
    if missing or not (bin_dir.parent / "tekton-config").is_dir():
        pytest.fail(
            f"{bin_dir} lacks {missing or 'tekton-config/'}: run tests/cluster/build",
            pytrace=False,
        )
    return bin_dir


@pytest.fixture(scope="session")
def cluster(
    request: pytest.FixtureRequest,
    cluster_bin_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ControlPlane]:
    started = time.monotonic()
    control_plane = ControlPlane(
        bin_dir=cluster_bin_dir, directory=tmp_path_factory.mktemp("cluster", numbered=False)
    )
    state = _state(request.config)
    state.components = control_plane.components  # the same list: filled as they start
    try:
        control_plane.start()
        with control_plane.api_client() as api:
            kube = Kube(api)
            install_crds(
                kube, sorted((cluster_bin_dir.parent / "tekton-config" / "300-crds").glob("*.yaml"))
            )
            install_crds(kube, sorted(FERRY_CRDS.glob("*.yaml")))
        _announce(
            request.config,
            f"control plane ready in {time.monotonic() - started:.1f}s "
            f"(etcd, kube-apiserver, kube-controller-manager, CRDs); "
            f"logs in {control_plane.logs_dir}",
        )
        yield control_plane
    finally:
        control_plane.stop()


@pytest.fixture(scope="session")
def kube(cluster: ControlPlane) -> Iterator[Kube]:
    with cluster.api_client() as api:
        yield Kube(api)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube: Kube) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{secrets.token_hex(3)}"
    ensure_namespace(kube, name, labels={TEST_NAMESPACE_LABEL: "true"})
    wait_for_service_account(kube.api_client, name)
    yield name
    kube.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="session")
def tekton(
    request: pytest.FixtureRequest, cluster: ControlPlane, kube: Kube
) -> Iterator[TektonController]:
    started = time.monotonic()
    controller = TektonController(
        control_plane=cluster, config_dir=cluster.bin_dir.parent / "tekton-config"
    )
    try:
        controller.install(kube)
        controller.start()
        assert controller.component is not None
        cluster.components.append(controller.component)
        probe_namespace = f"tekton-ready-{secrets.token_hex(3)}"
        ensure_namespace(kube, probe_namespace)
        controller.wait_ready(kube, probe_namespace)
        kube.delete(f"/api/v1/namespaces/{probe_namespace}")
        _announce(
            request.config,
            f"Tekton controller ready in {time.monotonic() - started:.1f}s "
            f"(reconciled a PipelineRun {controller.ready_seconds:.1f}s after start)",
        )
        yield controller
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def kubelet(request: pytest.FixtureRequest, cluster: ControlPlane) -> Iterator[SimulatedKubelet]:
    assert cluster.pki is not None
    simulated = SimulatedKubelet(
        api_client_factory=cluster.api_client, work_dir=cluster.directory / "kubelet",
        # The API server's own serving pair does: it does not check a kubelet's certificate.
        serving_cert=cluster.pki.serving_cert, serving_key=cluster.pki.serving_key,
    )
    _state(request.config).extra_logs.append(simulated.log_path)
    simulated.start()
    try:
        yield simulated
    finally:
        simulated.stop()
