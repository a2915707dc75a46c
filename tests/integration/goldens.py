"""The compiler's golden PipelineRuns (tests/golden/*.pipelinerun.yaml), as test parameters."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.pipelinerun.yaml"))
MINIMUM_GOLDENS = 10


def golden_params() -> list[Any]:
    return [
        pytest.param(path, id=path.name.removesuffix(".pipelinerun.yaml")) for path in GOLDEN_FILES
    ]


def load_golden(path: Path, namespace: str, **annotations: str) -> dict[str, Any]:
    """The golden run moved into ``namespace``, with extra annotations."""
    run: dict[str, Any] = copy.deepcopy(yaml.safe_load(path.read_text()))
    run["metadata"]["namespace"] = namespace
    if annotations:
        run["metadata"].setdefault("annotations", {}).update(annotations)
    return run
