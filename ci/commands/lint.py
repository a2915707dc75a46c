"""`ferry lint [FILE ...]`: every problem of each spec, as `FILE:LINE:COL: severity: message`.

Exit status: 1 if any file has an error (or cannot be read), else 0. Warnings are printed
but never fail the command, as they never block a run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipelines.preparing import Problems, prepare
from pipelines.problems import Severity
from pipelines.spec import DEFAULT_SPEC_PATH


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="check .ci.yaml files and print every problem with its line and column",
        description="Check spec files. Prints FILE:LINE:COL: error|warning: message (hint).",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", default=[DEFAULT_SPEC_PATH],
                        help=f"spec files to check (default: {DEFAULT_SPEC_PATH})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    errors = warnings = 0
    for name in args.files:
        try:
            source = Path(name).read_bytes()
        except OSError as error:
            print(f"{name}: error: cannot read the file: {error.strerror}")
            errors += 1
            continue
        linted = prepare(source, path=name)
        problems = linted.problems if isinstance(linted, Problems) else linted.warnings
        for problem in problems:
            print(problem)
        file_errors = sum(problem.severity == Severity.ERROR for problem in problems)
        errors += file_errors
        warnings += len(problems) - file_errors
    summary = f"{_count(len(args.files), 'file')} checked: {_count(errors, 'error')}, " \
              f"{_count(warnings, 'warning')}"
    if errors:
        print(summary)
        return 1
    print(f"ok: {summary}")
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
