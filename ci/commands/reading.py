"""What `ferry runs`, `ferry logs` and `ferry cancel` share: finding Ferry's read API and
calling it as the user, with the user's own Kubernetes token, so RBAC decides what they see.

The API is the receiver's `/api/v1` (docs/logs.md): its URL comes from `--api` or
`$FERRY_API_URL` (the address the receiver is reached at, e.g. its Ingress); the token from
`$FERRY_TOKEN` or the kubeconfig (`--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`; exec
plugins are run). The namespace: `-n`, else the kubeconfig context's, else `default`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ci.logs import excerpt

API_ENV = "FERRY_API_URL"
TOKEN_ENV = "FERRY_TOKEN"  # noqa: S105 (a variable's name, not a token)
CA_ENV = "FERRY_API_CA_FILE"
EXIT_FAILED = 1
# Seconds to connect and for each read of a plain answer (a followed log waits longer).
TIMEOUT = 30.0


class CliError(Exception):
    """A clear message for the user, printed as `ferry <command>: <message>`."""


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace",
                        help="the Repository's namespace (default: the kubeconfig context's)")
    parser.add_argument("--api", metavar="URL",
                        help=f"Ferry's read API, the receiver's URL (default: ${API_ENV})")
    parser.add_argument("--kubeconfig", type=Path,
                        help="whose token to send (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", help="the kubeconfig context")
    parser.add_argument("--ca-file", type=Path,
                        help=f"CA bundle for the API's certificate (default: ${CA_ENV})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    url: str
    token: str = field(repr=False)
    namespace: str
    verify: str | bool = True


def target(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Target:
    """Where the API is and who the user is; CliError says what is missing."""
    from ci.kube.errors import KubeconfigError  # noqa: PLC0415
    from ci.kube.kubeconfig import kubeconfig_path, user_credentials  # noqa: PLC0415

    environment = dict(os.environ) if environ is None else environ
    url = (args.api or environment.get(API_ENV) or "").rstrip("/")
    if not url:
        raise CliError(f"where is Ferry's API? Pass --api URL or set {API_ENV} (the "
                       "receiver's address, e.g. https://ferry.example.com)")
    if not url.startswith(("https://", "http://")):
        raise CliError(f"--api {url!r}: give an http(s):// URL")
    token = environment.get(TOKEN_ENV) or None
    namespace = args.namespace
    if token is None or namespace is None:
        try:
            user = user_credentials(kubeconfig_path(args.kubeconfig, environment),
                                    context=args.context)
        except KubeconfigError as error:
            if token is None:
                raise CliError(str(error)) from error
            user = None  # FERRY_TOKEN and no kubeconfig: the namespace defaults
        if user is not None:
            token = token or user.token
            namespace = namespace or user.namespace
        if token is None:
            raise CliError("the kubeconfig has no bearer token (a client certificate cannot be "
                           f"passed on): set {TOKEN_ENV}, e.g. to `kubectl create token ...`")
    ca_file = args.ca_file or (Path(environment[CA_ENV]) if environment.get(CA_ENV) else None)
    return Target(url=url, token=token, namespace=namespace or "default",
                  verify=str(ca_file) if ca_file is not None else True)


class ReadApi:
    """Calls to `/api/v1` as the user. Every failure is a `CliError` that names its cause."""

    def __init__(self, where: Target, *, transport: httpx.BaseTransport | None = None) -> None:
        self.where = where
        self._http = httpx.Client(
            base_url=f"{where.url}/api/v1", verify=where.verify, transport=transport,
            headers={"Authorization": f"Bearer {where.token}"},
            timeout=httpx.Timeout(TIMEOUT), follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        with self._call(path, params=params) as response:
            response.read()
            return response.json()

    def text(self, path: str) -> Iterator[bytes]:
        with self._call(path) as response:
            yield from response.iter_bytes()

    def events(self, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Server-Sent Events as (event, data); waits as long as the step runs."""
        with self._call(path, read_timeout=None) as response:
            kind, data = "message", ""
            for line in response.iter_lines():
                if not line:
                    if data:
                        yield kind, json.loads(data)
                    kind, data = "message", ""
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()

    def _call(self, path: str, *, params: dict[str, Any] | None = None,
              read_timeout: float | None = TIMEOUT) -> Any:
        timeout = httpx.Timeout(TIMEOUT, read=read_timeout)
        try:
            request = self._http.build_request("GET", path, params=params, timeout=timeout)
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach Ferry's API at {self.where.url}: {error}") from error
        if response.status_code >= 400:
            response.read()
            response.close()
            raise CliError(self._refusal(response))
        return _Closing(response)

    def _refusal(self, response: httpx.Response) -> str:
        try:
            said = str(response.json().get("error", ""))
        except ValueError:
            said = excerpt(response.text)
        status = response.status_code
        if status == 401:
            return f"Ferry's API did not accept your token ({said}); log in to the cluster again"
        if status == 403:
            return f"permission denied: {said}"
        if status == 404:
            return said or "not found"
        return f"Ferry's API answered {status}: {said}"


class _Closing:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    def __enter__(self) -> httpx.Response:
        return self._response

    def __exit__(self, *_exc: object) -> None:
        self._response.close()


def fail(command: str, error: CliError) -> int:
    print(f"ferry {command}: {error}", file=sys.stderr)
    return EXIT_FAILED


def parse_run(text: str, namespace: str) -> tuple[str, str]:
    """`RUN` or `NAMESPACE/RUN` -> (namespace, run)."""
    space, _, name = text.rpartition("/")
    return (space or namespace, name)
