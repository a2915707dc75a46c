"""Where the forges' and Tekton's published contracts are: `../shared/contracts` beside the
repository (CI lays a copy there), or `$FERRY_CONTRACTS`.

Missing contracts are a broken checkout, never a reason to skip: the contract tests are the
proof that Ferry speaks the forges' and Tekton's real formats.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _find() -> Path:
    configured = os.environ.get("FERRY_CONTRACTS")
    candidate = Path(configured) if configured else ROOT.parent / "shared" / "contracts"
    if not (candidate / "SOURCES.md").is_file():
        raise RuntimeError(
            f"the contract files are not at {candidate}: check out `shared/` beside the "
            "repository, or point FERRY_CONTRACTS at its `contracts` folder"
        )
    return candidate


CONTRACTS = _find()
