"""`ferry cancel RUN`: stop a run, as the user: the same call as the receiver's cancel
(`spec.status: Cancelled` on the PipelineRun, ci/kube/pipeline_runs.py), made with the
user's own kubeconfig, so Kubernetes RBAC (`patch` on `pipelineruns`) decides."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ci.commands.reading import CliError, fail, parse_run


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("cancel", help="cancel a run (needs patch on pipelineruns)")
    parser.add_argument("run", metavar="RUN", help="the run's name (`ferry runs`), or NS/RUN")
    parser.add_argument("-n", "--namespace", help="default: the kubeconfig context's")
    parser.add_argument("--kubeconfig", type=Path, help="default: $KUBECONFIG, ~/.kube/config")
    parser.add_argument("--context", help="the kubeconfig context")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ci.kube.connecting import api_client  # noqa: PLC0415 (heavy)
    from ci.kube.errors import (  # noqa: PLC0415
        ApiRefusedError,
        ApiUnavailableError,
        KubeconfigError,
    )
    from ci.kube.kubeconfig import kubeconfig_path, user_credentials  # noqa: PLC0415
    from ci.kube.pipeline_runs import PipelineRuns  # noqa: PLC0415
    from ci.settings import KubernetesSettings  # noqa: PLC0415

    path = kubeconfig_path(args.kubeconfig)
    try:
        try:
            user = user_credentials(path, context=args.context)
        except KubeconfigError as error:
            raise CliError(str(error)) from error
        namespace, name = parse_run(args.run, args.namespace or user.namespace or "default")
        kubernetes = KubernetesSettings(kubeconfig=path, context=args.context)
        client = api_client(kubernetes)
        try:
            runs = PipelineRuns(client, request_timeout=kubernetes.request_timeout_seconds)
            try:
                if not runs.cancel(namespace, name):
                    raise CliError(f"no run {name} in namespace {namespace}")
            except ApiRefusedError as error:
                if error.status == 403:
                    raise CliError(f"permission denied: you may not patch pipelineruns in "
                                   f"namespace {namespace} (Kubernetes RBAC)") from error
                raise CliError(str(error)) from error
            except ApiUnavailableError as error:
                raise CliError(f"cannot reach the cluster at {user.server}: {error}") from error
        finally:
            client.close()
    except CliError as error:
        return fail("cancel", error)
    print(f"cancelled {namespace}/{name}")
    return 0
