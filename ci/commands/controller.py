"""`ferry controller`: run the controller (PipelineRun status to the forge) until SIGTERM.

`ferry serve controller` (the receiver's `ci.commands.serve`) calls the same
`ci.controller.app.run_controller`; this command exists for running the controller alone.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from ci.controller.settings import ControllerSettings, LeaderSettings, RetrySettings
from ci.kube.connecting import KubernetesSettings
from ci.kube.watching import WatchSettings


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "controller", help="report PipelineRun statuses to the forge (the controller)"
    )
    parser.add_argument("--kubeconfig", type=Path, help="default: the pod's ServiceAccount")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--namespace", action="append", default=[], dest="namespaces",
                        help="watch only this namespace (repeatable); default: all")
    parser.add_argument("--identity", default="", help="name in the Lease; default host-pid")
    parser.add_argument("--details-url", help="URL template, e.g. "
                        "https://dash/#/namespaces/{namespace}/pipelineruns/{name}")
    parser.add_argument("--context-prefix", default="ferry", help="status context prefix")
    parser.add_argument("--workers", type=int, default=32, help="runs reported at once")
    parser.add_argument("--backoff", default="1,2,5,10,30,60",
                        help="seconds between forge retries, comma-separated")
    parser.add_argument("--no-leader-election", action="store_true")
    parser.add_argument("--lease-namespace", default="ferry-system")
    parser.add_argument("--lease-name", default="ferry-controller")
    parser.add_argument("--lease-duration", type=float, default=15.0, help="seconds")
    parser.add_argument("--lease-renew", type=float, default=5.0, help="seconds")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics here")
    parser.add_argument("--no-prune", action="store_true", help="keep every finished run")
    parser.add_argument("--log-level", default="info")
    parser.set_defaults(handler=run)


def settings_from(args: argparse.Namespace) -> ControllerSettings:
    return ControllerSettings(
        kubernetes=KubernetesSettings(kubeconfig=args.kubeconfig, context=args.context),
        watch=WatchSettings(),
        retry=RetrySettings(backoff=tuple(float(part) for part in args.backoff.split(","))),
        leader=LeaderSettings(
            enabled=not args.no_leader_election,
            namespace=args.lease_namespace,
            name=args.lease_name,
            duration=args.lease_duration,
            renew_interval=args.lease_renew,
            retry_interval=min(2.0, args.lease_renew),
        ),
        namespaces=tuple(args.namespaces),
        identity=args.identity,
        details_url_template=args.details_url,
        context_prefix=args.context_prefix,
        workers=args.workers,
        prune=not args.no_prune,
        metrics_port=args.metrics_port,
    )


def run(args: argparse.Namespace) -> int:
    from ci import logs  # noqa: PLC0415 (the command's own imports stay out of `ferry lint`)
    from ci.controller.app import run_controller  # noqa: PLC0415

    logs.configure(level=args.log_level)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run_controller(settings_from(args), stop=stop)
    # Stopped by a signal: a clean exit. Otherwise the lease was lost: exit non-zero so the
    # pod restarts as a standby.
    return 0 if stop.is_set() else 1
