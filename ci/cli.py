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
SUBCOMMANDS: tuple[str, ...] = (
    "cancel", "controller", "lint", "logs", "render", "run", "runs", "schema", "serve",
    "trigger",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser(*, only: str | None = None) -> argparse.ArgumentParser:
    """The parser for every subcommand, or for `only` one of them.

    Importing every subcommand costs the Kubernetes client, the web stack and more (about
    150 ms); `ferry run` and `ferry lint` run on laptops many times a day and should not pay
    for `ferry serve`.
    """
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Kubernetes-native CI on Tekton, driven by one .ci.yaml per repository.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in (only,) if only in SUBCOMMANDS else SUBCOMMANDS:
        module = importlib.import_module(f"ci.commands.{name}")
        module.register(subparsers)
    return parser


def _chosen_subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, if it is a known one."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in SUBCOMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(only=_chosen_subcommand(arguments)).parse_args(arguments)
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
