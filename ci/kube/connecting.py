"""Make a Kubernetes API client from explicit settings: a kubeconfig, or the pod's own account."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The `kubernetes` group: where the API server is (no kubeconfig and not in a pod means no
# cluster), the timeout of every call, the pool. `ferry trigger`, `runs`, `logs` and `cancel`
# fill it from the user's kubeconfig flags, the servers from their settings.
from ci.settings import KubernetesSettings

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
# Seconds between the client's token refreshes. Its loaders re-check the token before every
# call, and each check sets the configuration's host again, which re-reads the whole process
# environment for proxies: 3.7% of the controller's CPU in a burst (`bench.controller
# --profile`). A projected service account token is re-read every minute and a kubeconfig's
# exec token counts as expired five minutes early, so ten seconds changes nothing that expires.
TOKEN_REFRESH_SECONDS = 10.0


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
    configuration.connection_pool_maxsize = settings.pool_size
    if configuration.refresh_api_key_hook is not None:
        configuration.refresh_api_key_hook = throttled(
            configuration.refresh_api_key_hook, seconds=TOKEN_REFRESH_SECONDS)
    return kubernetes.client.ApiClient(configuration)


def throttled(hook: Callable[[Any], None], *, seconds: float,
              clock: Callable[[], float] = time.monotonic) -> Callable[[Any], None]:
    """`hook` (the client's token refresh, called with the configuration before every
    request) run at most once per `seconds`, and at once on the first call; the calls in
    between return without it. The client's loaders install their hook again each time it
    runs: the one installed is called next time, and this one stays in its place."""
    lock = threading.Lock()
    last_run: float | None = None

    def refresh(configuration: Any) -> None:
        nonlocal hook, last_run
        with lock:
            now = clock()
            if last_run is not None and now - last_run < seconds:
                return
            try:
                hook(configuration)
            finally:
                installed = configuration.refresh_api_key_hook
                if installed is not refresh and installed is not None:
                    hook = installed
                    configuration.refresh_api_key_hook = refresh
            last_run = now

    return refresh


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
