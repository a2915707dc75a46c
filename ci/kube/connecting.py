"""Make a Kubernetes API client from explicit settings: a kubeconfig, or the pod's own account."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesSettings:
    """Where the API server is. No kubeconfig and not in a pod means: no cluster."""

    kubeconfig: Path | None = None  # None: in-cluster config (the pod's ServiceAccount)
    context: str | None = None
    # Seconds for one API call (not watches, which have their own timeouts).
    request_timeout: float = 10.0
    # Connections kept to the API server; None: the client's default (4), which serialises
    # a busy receiver's concurrent calls.
    pool_size: int | None = None


IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def cluster_configured(settings: KubernetesSettings) -> bool:
    """Is there a cluster to talk to? (Else `ferry serve` uses the local backend.)"""
    if settings.kubeconfig is not None:
        return settings.kubeconfig.is_file()
    return IN_CLUSTER_TOKEN.is_file()


def api_client(settings: KubernetesSettings) -> Any:
    """A `kubernetes.client.ApiClient` for `settings`; the caller closes it."""
    import kubernetes  # noqa: PLC0415 (heavy; `ferry lint` and `ferry run` never pay for it)

    configuration = kubernetes.client.Configuration()
    if settings.kubeconfig is not None:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(settings.kubeconfig),
            context=settings.context,
            client_configuration=configuration,
        )
    else:
        kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    if settings.pool_size is not None:
        configuration.connection_pool_maxsize = settings.pool_size
    return kubernetes.client.ApiClient(configuration)


def custom_objects(client: Any) -> Any:
    """A `kubernetes.client.CustomObjectsApi` over `client`, for the watches and the Repository
    and PipelineRun calls: made here so that only `ci.kube` imports the Kubernetes client."""
    from kubernetes.client import CustomObjectsApi  # noqa: PLC0415 (heavy, as above)

    return CustomObjectsApi(client)


def context_namespace(settings: KubernetesSettings) -> str | None:
    """The namespace the kubeconfig's (current or named) context sets, as kubectl uses it;
    None when it sets none, or when there is no kubeconfig (in a pod)."""
    import kubernetes  # noqa: PLC0415 (heavy, as above)

    if settings.kubeconfig is None:
        return None
    contexts, current = kubernetes.config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
        config_file=str(settings.kubeconfig))
    chosen = next((c for c in contexts if c.get("name") == settings.context), None) or current
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None
