"""A user's own credentials from their kubeconfig, for the CLI's calls to Ferry's read API
(`ferry runs`, `ferry logs`): the bearer token the API server would see, and the context's
namespace. Exec plugins (cloud logins) are run as kubectl runs them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ci.kube.errors import KubeconfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCredentials:
    server: str
    token: str | None = field(repr=False)  # None: a client certificate (no bearer token)
    namespace: str | None  # the context's namespace, if it names one


def kubeconfig_path(given: Path | None, environ: dict[str, str] | None = None) -> Path:
    """`given`, else the first file of `$KUBECONFIG`, else `~/.kube/config` (as kubectl)."""
    if given is not None:
        return given
    environment = os.environ if environ is None else environ
    listed = environment.get("KUBECONFIG", "")
    if listed:
        return Path(listed.split(os.pathsep)[0])
    return Path.home() / ".kube" / "config"


def user_credentials(path: Path, *, context: str | None = None) -> UserCredentials:
    import kubernetes  # noqa: PLC0415 (heavy; only the commands that talk to a cluster)

    if not path.is_file():
        raise KubeconfigError(f"no cluster: there is no kubeconfig at {path} (set KUBECONFIG "
                              "or pass --kubeconfig)")
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=context, client_configuration=configuration)
        contexts, active = kubernetes.config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=str(path))
    except Exception as error:  # the client raises ConfigException, ValueError, OSError...
        raise KubeconfigError(f"cannot use the kubeconfig {path}: {error}") from error
    chosen = next((c for c in contexts or () if c.get("name") == context), None) if context \
        else active
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    keys = configuration.api_key or {}
    # The client names it `BearerToken` (v30 and later) or `authorization` (before).
    header = str(keys.get("BearerToken") or keys.get("authorization") or "")
    token = header.removeprefix("Bearer ").strip() or None
    return UserCredentials(server=str(configuration.host), token=token,
                           namespace=str(namespace) if namespace else None)
