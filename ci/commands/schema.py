"""`ferry schema`: the JSON Schema of `.ci.yaml`, for editors.

Point the YAML language server at it, e.g. first line of `.ci.yaml`:
`# yaml-language-server: $schema=./ci.schema.json` after `ferry schema > ci.schema.json`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipelines.schema import spec_json_schema


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("schema", help="print the JSON Schema of .ci.yaml")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(spec_json_schema(), indent=2))
    return 0
