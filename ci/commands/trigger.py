"""`ferry trigger REPOSITORY [--branch B | --sha S] [--param K=V]`: start a manual run of a
branch's head (default: the repository's default branch) or of one commit.

Creates a RunRequest (ci/kube/run_requests.py) with the user's own kubeconfig, in the
namespace of the Repository object; the receiver turns it into a run of event `manual`, and
the commit's status says who started it. The user needs `create` (and `get`, to wait for
the outcome) on `runrequests.ferry.dev` there: the ClusterRole ferry-trigger
(deploy/base/team-roles.yaml), bound in the team's namespace (docs/schedules.md).

Exit status: 0 when a run was created (or existed), 1 when the request was refused or did
not become a run, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2
POLL_SECONDS = 0.5
DOCS = "docs/schedules.md"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "trigger",
        help="start a manual run of a Repository's branch or commit (event `manual`)",
        description="Start a run of a Repository's branch head (default: its default "
        "branch) or of one commit, with event "
        "`manual`, as yourself: creates a RunRequest with your kubeconfig.",
    )
    parser.add_argument("repository", metavar="REPOSITORY",
                        help="the Repository object's name (or NAMESPACE/NAME)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--branch",
                       help="run this branch's head commit (default: the default branch)")
    which.add_argument("--sha", help="run this commit (its full hash)")
    parser.add_argument("--param", action="append", default=[], metavar="K=V",
                        help="a parameter for the steps, in FERRY_PARAMS (repeatable)")
    parser.add_argument("-n", "--namespace",
                        help="the Repository's namespace (default: the kubeconfig context's)")
    parser.add_argument("--kubeconfig", type=Path,
                        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for the run to be created (0: do not wait)")
    parser.set_defaults(handler=run)


def _params(pairs: list[str]) -> dict[str, str] | str:
    """The parameters, or the message for the first malformed one."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            return f"--param {pair!r}: expected KEY=VALUE"
        params[key] = value
    return params


def _kubeconfig(given: Path | None) -> Path:
    if given is not None:
        return given
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


def run(args: argparse.Namespace) -> int:
    from ci.kube.connecting import api_client, context_namespace  # noqa: PLC0415 (only this command pays)
    from ci.kube.errors import ApiRefusedError, ApiUnavailableError  # noqa: PLC0415
    from ci.kube.run_requests import RunRequests  # noqa: PLC0415
    from ci.settings import KubernetesSettings  # noqa: PLC0415

    params = _params(args.param)
    if isinstance(params, str):
        return _fail(params, code=EXIT_USAGE)
    namespace, _, name = args.repository.rpartition("/")
    kubeconfig = _kubeconfig(args.kubeconfig)
    if not kubeconfig.is_file():
        return _fail(f"no kubeconfig at {kubeconfig} (--kubeconfig or $KUBECONFIG)",
                     code=EXIT_USAGE)
    settings = KubernetesSettings(kubeconfig=kubeconfig, context=args.context)
    namespace = namespace or args.namespace or context_namespace(settings) or "default"
    client = api_client(settings)
    requests = RunRequests(client, request_timeout=settings.request_timeout_seconds)
    try:
        return _request(requests, namespace, name, args, params)
    except ApiRefusedError as error:
        if error.status == 403:
            return _fail(
                f"you may not start runs in namespace {namespace}: {error}. Ask for the "
                f"ferry-trigger ClusterRole to be bound to you there ({DOCS})")
        return _fail(f"the API server refused the request: {error}")
    except ApiUnavailableError as error:
        return _fail(f"the Kubernetes API is unavailable: {error}")
    finally:
        client.close()


def _request(requests: Any, namespace: str, name: str, args: argparse.Namespace,
             params: dict[str, str]) -> int:
    from ci.kube.run_requests import manual_body  # noqa: PLC0415

    user = requests.whoami()
    uid = requests.repository_uid(namespace, name)
    if uid is None:
        return _fail(f"no Repository {name} in namespace {namespace} "
                     f"(kubectl get repositories -n {namespace})")
    body = manual_body(namespace=namespace, repository=name, requested_by=user,
                       branch=args.branch, sha=args.sha, params=params, repository_uid=uid)
    created, _ = requests.create(body)
    request_name = str(created["metadata"]["name"])
    print(f"runrequest {namespace}/{request_name} created by {user}")
    return _wait(requests, namespace, request_name, timeout=args.timeout)


def _wait(requests: Any, namespace: str, name: str, *, timeout: float) -> int:
    if timeout <= 0:
        return 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(namespace, name).get("status") or {}
        outcome = status.get("outcome")
        if outcome:
            message = status.get("message") or ""
            if status.get("pipelineRun"):
                print(f"pipelinerun {namespace}/{status['pipelineRun']} ({outcome}) "
                      f"at {str(status.get('sha', ''))[:12]}")
                return 0
            return _fail(f"no run: {outcome}{': ' + message if message else ''}")
        time.sleep(POLL_SECONDS)
    return _fail(f"no outcome within {timeout:g} s; is `ferry serve` running? "
                 f"(kubectl get runrequest -n {namespace} {name})")


def _fail(message: str, *, code: int = EXIT_FAILED) -> int:
    print(f"ferry trigger: {message}", file=sys.stderr)
    return code
