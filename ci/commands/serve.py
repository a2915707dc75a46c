"""`ferry serve [webhooks]`: the webhook receiver under uvicorn.

With a cluster configured (a kubeconfig, or running in a pod) runs become Tekton
PipelineRuns; with none, `ferry serve` runs them on this machine (the local backend) and
reports to the forge all the same. Settings: `--config FILE` (or `$FERRY_CONFIG`), then
`FERRY_*` variables (see `ci.settings` and docs/webhooks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ci import logs
from ci.settings import Settings, SettingsError, load_settings

COMPONENTS = ("webhooks",)
EXIT_SETTINGS = 2


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="receive forge webhooks and run pipelines (on Tekton, or on this machine)",
        description="Serve the webhook receiver. Runs go to Tekton when a cluster is "
        "configured, else they run on this machine.",
    )
    parser.add_argument("component", nargs="?", choices=COMPONENTS, default="webhooks",
                        help="what to serve (default: webhooks)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a YAML or TOML settings file (default: $FERRY_CONFIG)")
    parser.add_argument("--host", help="address to listen on (FERRY_WEBHOOKS_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (FERRY_WEBHOOKS_PORT)")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(environ=os.environ, config_file=args.config)
    except SettingsError as error:
        print(f"ferry serve: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    overrides = {"host": args.host, "port": args.port}
    webhooks = settings.webhooks.model_copy(
        update={key: value for key, value in overrides.items() if value is not None}
    )
    return _serve_webhooks(settings.model_copy(update={"webhooks": webhooks}))


def _serve_webhooks(settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 (only `ferry serve` pays for the server)

    from webhooks.app import create_app  # noqa: PLC0415 (the CLI is where layers meet)

    redactor = logs.configure(json=settings.logging.json_lines, level=settings.logging.level)
    app = create_app(settings, redactor=redactor)
    uvicorn.run(
        app,
        host=settings.webhooks.host,
        port=settings.webhooks.port,
        log_config=None,  # structlog writes our lines; uvicorn's own stay plain
        access_log=False,  # every delivery is logged once, with its outcome
        timeout_graceful_shutdown=int(settings.webhooks.request_timeout_seconds),
    )
    return 0
