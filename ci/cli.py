"""`ferry`: the command line. Each subcommand lives in its own module under `ci.commands`.

A subcommand module exposes `register(subparsers)`, which adds its parser and sets
`handler` (a function of the parsed namespace returning the exit code) as a default.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Listed here, imported lazily: `ferry lint` must not pay for the Kubernetes client.
SUBCOMMANDS: tuple[str, ...] = ("controller", "lint", "render", "run", "schema", "serve")

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Kubernetes-native CI on Tekton, driven by one .ci.yaml per repository.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"ci.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
