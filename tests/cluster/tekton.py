"""The real Tekton Pipelines controller, run as a local process against the test API server.

Installing it is what ``kubectl apply -f release.yaml`` would do, minus what cannot work here:
no Deployment (we run the binary), no admission webhook (the reconcilers default and validate
runs themselves; the CRDs' conversion webhook is switched off, so only v1 is meaningful), no
RBAC (the controller uses the admin kubeconfig).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.control_plane import ControlPlane
from tests.cluster.processes import Component, free_port, wait_until
from tests.cluster.resources import Kube, KubeError, Obj

SYSTEM_NAMESPACE = "tekton-pipelines"
TEKTON_API = "tekton.dev/v1"

# What the controller may need beyond the defaults shipped in config/, and why.
FEATURE_FLAGS = {
    # The affinity assistant is a StatefulSet per PVC workspace; nothing schedules it here.
    "coschedule": "disabled",
}
OBSERVABILITY = {
    # No Prometheus listener: it would bind port 9090 on every interface.
    "metrics-protocol": "none",
}

# The controller refuses to start without these; no image is ever pulled in the tests.
IMAGES = {
    "entrypoint-image": "ferry.invalid/tekton/entrypoint:test",
    "nop-image": "ferry.invalid/tekton/nop:test",
    "sidecarlogresults-image": "ferry.invalid/tekton/sidecarlogresults:test",
    "workingdirinit-image": "ferry.invalid/tekton/workingdirinit:test",
    "shell-image": "ferry.invalid/tekton/busybox:test",
    "shell-image-win": "ferry.invalid/tekton/powershell:test",
}

# Informer caches of a cold controller fill in a few seconds; a busy 2-core runner with the
# rest of the suite running can need far more. A slow machine must not fail the tests.
READY_SECONDS = 300.0
CRDS_ESTABLISHED_SECONDS = 120.0

# Tekton's own reasons for runs it refused to validate or resolve (REFERENCE.md section 5).
# A compiled run that ends with one of these is a compiler bug.
VALIDATION_FAILURE_REASONS = frozenset(
    {
        "PipelineValidationFailed",
        "CouldntGetPipeline",
        "CouldntGetTask",
        "InvalidPipelineResourceBindings",
        "InvalidWorkspaceBindings",
        "InvalidTaskRunSpecs",
        "ParameterTypeMismatch",
        "ObjectParameterMissKeys",
        "ParamArrayIndexingInvalid",
        "ParameterMissing",
        "PipelineInvalidGraph",
        "InvalidMatrixParameterTypes",
        "InvalidTaskResultReference",
        "InvalidPipelineResultReference",
        "RequiredWorkspaceMarkedOptional",
        "ResourceVerificationFailed",
        "InvalidParamValue",
        "CELEvaluationFailed",
        "CreateRunFailed",
        # TaskRun reasons that the PipelineRun may carry over in its message.
        "TaskRunValidationFailed",
        "TaskValidationFailed",
        "TaskRunResolutionFailed",
        "PodCreationFailed",
    }
)


def load_documents(path: Path) -> list[Obj]:
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def install_crds(kube: Kube, paths: list[Path]) -> list[str]:
    """Create (or replace) the CustomResourceDefinitions in ``paths``; wait until established.

    Created rather than client-side applied: Tekton's CRDs are larger than the
    ``last-applied-configuration`` annotation may be.
    """
    names = []
    for path in paths:
        for crd in load_documents(path):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            conversion = crd["spec"].get("conversion")
            if conversion and conversion.get("strategy") == "Webhook":
                # Tekton's webhook is not running; v1 is the storage version, so no conversion
                # happens for v1 clients, which is all Ferry speaks.
                crd["spec"]["conversion"] = {"strategy": "None"}
            name = crd["metadata"]["name"]
            path_of = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            try:
                kube.create(crd)
            except KubeError as error:
                if error.status != 409:
                    raise
                existing = kube.get(path_of)
                crd["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
                kube.request("PUT", path_of, body=crd)
            names.append(name)
    for name in names:
        wait_until(
            lambda name=name: _crd_established(kube, name),  # type: ignore[misc]
            what=f"CustomResourceDefinition {name} to be established",
            timeout=CRDS_ESTABLISHED_SECONDS,
        )
    return names


def _crd_established(kube: Kube, name: str) -> bool:
    crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


def ensure_namespace(kube: Kube, name: str, labels: dict[str, str] | None = None) -> None:
    body: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if labels:
        body["metadata"]["labels"] = labels
    try:
        kube.create(body)
    except KubeError as error:
        if error.status != 409:
            raise


@dataclass
class TektonController:
    """Tekton's CRDs and ConfigMaps installed, and its controller running as a process."""

    control_plane: ControlPlane
    config_dir: Path  # the module's config/ directory, copied by tests/cluster/build
    component: Component | None = None
    probes_port: int = 0
    ready_seconds: float = field(default=0.0)

    @property
    def log_path(self) -> Path:
        return self.control_plane.logs_dir / "tekton-controller.log"

    def install(self, kube: Kube) -> None:
        ensure_namespace(kube, SYSTEM_NAMESPACE)
        install_crds(kube, sorted((self.config_dir / "300-crds").glob("*.yaml")))
        for path in sorted(self.config_dir.glob("*.yaml")):
            for doc in load_documents(path):
                if doc.get("kind") == "ConfigMap":
                    self._create_config_map(kube, doc)

    def _create_config_map(self, kube: Kube, config_map: Obj) -> None:
        config_map["metadata"]["namespace"] = SYSTEM_NAMESPACE
        data: dict[str, Any] = config_map.setdefault("data", {}) or {}
        config_map["data"] = data
        name = config_map["metadata"]["name"]
        if name == "feature-flags":
            data.update(FEATURE_FLAGS)
        elif name == "config-observability":
            data.update(OBSERVABILITY)
        try:
            kube.create(config_map)
        except KubeError as error:
            if error.status != 409:
                raise

    def start(self) -> None:
        bin_dir = self.control_plane.bin_dir
        self.probes_port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.control_plane.directory),
            "SYSTEM_NAMESPACE": SYSTEM_NAMESPACE,
            "KUBERNETES_MIN_VERSION": "v1.28.0",
            "CONFIG_DEFAULTS_NAME": "config-defaults",
            "CONFIG_LOGGING_NAME": "config-logging",
            "CONFIG_OBSERVABILITY_NAME": "config-observability",
            "CONFIG_FEATURE_FLAGS_NAME": "feature-flags",
            "CONFIG_LEADERELECTION_NAME": "config-leader-election-controller",
            "CONFIG_SPIRE": "config-spire",
            "METRICS_DOMAIN": "tekton.dev/pipeline",
            # Its own readiness server; Knative's second probe server binds :8080 (see README).
            "PROBES_PORT": str(self.probes_port),
            "PROFILING_PORT": str(free_port()),
            "METRICS_PROMETHEUS_HOST": "127.0.0.1",
            "METRICS_PROMETHEUS_PORT": str(free_port()),
        }
        argv = [
            str(bin_dir / "tekton-controller"),
            f"-kubeconfig={self.control_plane.kubeconfig}",
            # One replica and no leader election: saves waiting for a lease at startup.
            "-disable-ha",
            *(f"-{flag}={image}" for flag, image in IMAGES.items()),
        ]
        self.component = Component(
            name="tekton-controller", argv=argv, log_path=self.log_path, env=env
        )
        self.component.start()

    def wait_ready(self, kube: Kube, namespace: str) -> None:
        """Wait until the controller has reconciled a PipelineRun: proof that it works.

        The probe run is ``PipelineRunPending``, so the controller marks it without creating
        any TaskRun or pod.
        """
        assert self.component is not None
        started = time.monotonic()
        probe: Obj = {
            "apiVersion": TEKTON_API,
            "kind": "PipelineRun",
            "metadata": {"generateName": "tekton-ready-", "namespace": namespace},
            "spec": {
                "status": "PipelineRunPending",
                "pipelineSpec": {
                    "tasks": [
                        {
                            "name": "noop",
                            "taskSpec": {"steps": [{"name": "noop", "image": "x", "script": ":"}]},
                        }
                    ]
                },
            },
        }
        created = kube.create(probe)
        path = (
            f"/apis/{TEKTON_API}/namespaces/{namespace}/pipelineruns/{created['metadata']['name']}"
        )

        def reconciled() -> bool:
            run = kube.get(path)
            return bool(run.get("status", {}).get("conditions"))

        wait_until(
            reconciled,
            what="the Tekton controller to reconcile a pending PipelineRun",
            timeout=READY_SECONDS,
            watching=[self.component, *self.control_plane.components],
            interval=0.5,
        )
        kube.delete(path)
        self.ready_seconds = time.monotonic() - started

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop()


def pipeline_run_path(namespace: str, name: str) -> str:
    return f"/apis/{TEKTON_API}/namespaces/{namespace}/pipelineruns/{name}"


def succeeded_condition(run: Obj) -> Obj | None:
    for condition in run.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == "Succeeded":
            return dict(condition)
    return None


def wait_for_pipeline_run(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    timeout: float = 180.0,
    watching: list[Component] | None = None,
) -> Obj:
    """Wait until the PipelineRun is done (its Succeeded condition is True or False)."""
    path = pipeline_run_path(namespace, name)
    result: dict[str, Obj] = {}

    def done() -> bool:
        run = kube.get(path)
        condition = succeeded_condition(run)
        if condition is not None and condition.get("status") in ("True", "False"):
            result["run"] = run
            return True
        result["last"] = run
        return False

    try:
        wait_until(
            done,
            what=f"PipelineRun {namespace}/{name} to finish",
            timeout=timeout,
            watching=watching or [],
            interval=0.5,
        )
    except TimeoutError as error:
        status = result.get("last", {}).get("status", {})
        raise TimeoutError(f"{error}\nlast status: {yaml.safe_dump(status)}") from None
    return result["run"]
