"""`ferry serve [webhooks|controller]`: the webhook receiver under uvicorn, or the controller.

`ferry serve` alone is `ferry serve webhooks`. With a cluster configured (a kubeconfig, or
running in a pod) runs become Tekton PipelineRuns; with none, the receiver runs them on this
machine (the local backend) and reports to the forge all the same. `ferry serve controller`
reports Tekton's PipelineRuns to the forge until SIGTERM.

Both read one settings source: `--config FILE` (or `$FERRY_CONFIG`), then `FERRY_*` variables
(see `ci.settings`, docs/webhooks.md and docs/controller.md); each uses its own group.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from ci import logs
from ci.settings import Settings, SettingsError, load_settings

COMPONENTS = ("webhooks", "controller")
EXIT_SETTINGS = 2
# The controller returned without being asked to stop: its Lease was lost. Non-zero, so
# Kubernetes restarts the pod, which comes back as a standby.
EXIT_LEASE_LOST = 1


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the webhook receiver (default) or the controller",
        description="Serve the webhook receiver (runs go to Tekton when a cluster is "
        "configured, else they run on this machine), or the controller (Tekton's statuses "
        "back to the forge). Both read one settings file and FERRY_* variables.",
    )
    parser.add_argument("component", nargs="?", choices=COMPONENTS, default="webhooks",
                        help="what to serve (default: webhooks)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a YAML or TOML settings file (default: $FERRY_CONFIG)")
    parser.add_argument("--host", help="address to listen on (FERRY_WEBHOOKS_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (FERRY_WEBHOOKS_PORT)")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    if args.component == "controller" and (args.host is not None or args.port is not None):
        print("ferry serve controller: --host and --port are the receiver's; the controller "
              "listens only for metrics (FERRY_CONTROLLER_METRICS_PORT)", file=sys.stderr)
        return EXIT_SETTINGS
    overrides = {"webhooks": {"host": args.host, "port": args.port}}
    settings = load_or_report(args, overrides=overrides, command=f"ferry serve {args.component}")
    if settings is None:
        return EXIT_SETTINGS
    if args.component == "controller":
        return serve_controller(settings)
    return _serve_webhooks(settings)


def load_or_report(
    args: argparse.Namespace,
    *,
    overrides: Mapping[str, Mapping[str, Any]],
    command: str,
) -> Settings | None:
    """The settings, or None after telling the operator on stderr what is wrong."""
    try:
        return load_settings(environ=os.environ, config_file=args.config, overrides=overrides)
    except SettingsError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return None


def serve_controller(settings: Settings) -> int:
    """Run the controller until SIGTERM or SIGINT (exit 0) or a lost Lease (exit 1)."""
    from ci.controller.app import run_controller  # noqa: PLC0415 (only the controller pays)
    from ci.controller.settings import controller_settings  # noqa: PLC0415

    controller = controller_settings(settings)
    logs.configure(json=settings.logging.json_lines, level=settings.logging.level)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run_controller(controller, stop=stop)
    return 0 if stop.is_set() else EXIT_LEASE_LOST


def _serve_webhooks(settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 (only `ferry serve` pays for the server)

    from ci.archive.configured import archive_settings, open_store  # noqa: PLC0415
    from webhooks.app import create_app  # noqa: PLC0415 (the CLI is where layers meet)

    redactor = logs.configure(json=settings.logging.json_lines, level=settings.logging.level)
    # The read API serves archived logs from the store the controller archives to.
    archive_at = archive_settings(settings.archive)
    archive = open_store(archive_at) if archive_at is not None else None
    app = create_app(settings, redactor=redactor, archive=archive)
    uvicorn.run(
        app,
        host=settings.webhooks.host,
        port=settings.webhooks.port,
        log_config=None,  # structlog writes our lines; uvicorn's own stay plain
        access_log=False,  # every delivery is logged once, with its outcome
        timeout_graceful_shutdown=int(settings.webhooks.request_timeout_seconds),
    )
    return 0
