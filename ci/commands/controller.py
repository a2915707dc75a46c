"""`ferry controller`: an alias of `ferry serve controller` whose flags override settings.

`ferry serve controller` with a settings file and `FERRY_CONTROLLER_*` variables is the one
documented way (docs/controller.md). This alias stays because scripts, the integration tests
and bench/controller.py start the controller with flags; each flag given wins over the same
setting from the environment and the file (flags > env > file > defaults), so every flag is
only a shortcut for one setting, never a second configuration.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ci.commands.serve import EXIT_SETTINGS, load_or_report, serve_controller


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "controller", help="alias of `ferry serve controller`; flags override settings"
    )
    # No defaults here: an absent flag leaves the setting to the environment and the file.
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a YAML or TOML settings file (default: $FERRY_CONFIG)")
    parser.add_argument("--kubeconfig", type=Path, help="FERRY_KUBERNETES_KUBECONFIG")
    parser.add_argument("--context", help="FERRY_KUBERNETES_CONTEXT")
    parser.add_argument("--namespace", action="append", dest="namespaces",
                        help="FERRY_CONTROLLER_NAMESPACES (repeatable)")
    parser.add_argument("--identity", help="FERRY_CONTROLLER_IDENTITY")
    parser.add_argument("--details-url", help="FERRY_CONTROLLER_DETAILS_URL_TEMPLATE")
    parser.add_argument("--context-prefix", help="FERRY_CONTROLLER_CONTEXT_PREFIX")
    parser.add_argument("--workers", type=int, help="FERRY_CONTROLLER_WORKERS")
    parser.add_argument("--backoff", help="FERRY_CONTROLLER_RETRY_BACKOFF_SECONDS, "
                        "comma-separated seconds")
    parser.add_argument("--no-leader-election", action="store_const", const=False,
                        dest="leader_election", help="FERRY_CONTROLLER_LEADER_ELECTION=false")
    parser.add_argument("--lease-namespace", help="FERRY_CONTROLLER_LEASE_NAMESPACE")
    parser.add_argument("--lease-name", help="FERRY_CONTROLLER_LEASE_NAME")
    parser.add_argument("--lease-duration", help="FERRY_CONTROLLER_LEASE_DURATION_SECONDS")
    parser.add_argument("--lease-renew", help="FERRY_CONTROLLER_LEASE_RENEW_SECONDS")
    parser.add_argument("--metrics-port", help="FERRY_CONTROLLER_METRICS_PORT")
    parser.add_argument("--no-prune", action="store_const", const=False, dest="prune",
                        help="FERRY_CONTROLLER_PRUNE=false")
    parser.add_argument("--schedule-interval",
                        help="FERRY_CONTROLLER_SCHEDULE_INTERVAL_SECONDS")
    parser.add_argument("--log-level", help="FERRY_LOGGING_LEVEL")
    parser.set_defaults(handler=run)


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The flags given, as settings by group and field (None: not given). The values stay
    text where they were text, so the settings model validates them like any other source."""
    return {
        "kubernetes": {"kubeconfig": args.kubeconfig, "context": args.context},
        "controller": {
            "namespaces": tuple(args.namespaces) if args.namespaces else None,
            "identity": args.identity,
            "details_url_template": args.details_url,
            "context_prefix": args.context_prefix,
            "workers": args.workers,
            "retry_backoff_seconds": (
                tuple(part.strip() for part in args.backoff.split(","))
                if args.backoff is not None else None
            ),
            "leader_election": args.leader_election,
            "lease_namespace": args.lease_namespace,
            "lease_name": args.lease_name,
            "lease_duration_seconds": args.lease_duration,
            "lease_renew_seconds": args.lease_renew,
            "metrics_port": args.metrics_port,
            "prune": args.prune,
            "schedule_interval_seconds": args.schedule_interval,
        },
        "logging": {"level": args.log_level},
    }


def run(args: argparse.Namespace) -> int:
    settings = load_or_report(args, overrides=overrides_from(args), command="ferry controller")
    if settings is None:
        return EXIT_SETTINGS
    return serve_controller(settings)
