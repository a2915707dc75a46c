"""`ferry run` and `ferry lint` run on laptops many times a day: they load none of the
libraries the cluster components need (the Kubernetes client alone is about 270 ms and 31 MB
to import). Read off `python -X importtime`, which lists every module a whole command run
imported, lazily imported ones too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

# What only `ferry serve`, the controller and the cluster commands need; `difflib` only a
# spec with a mistake in it (for "did you mean"); asyncio (with the ssl, socket and
# concurrent.futures it imports) only the servers: the local runner is threads.
HEAVY = frozenset({
    "kubernetes", "pydantic", "httpx", "git", "fastapi", "starlette", "uvicorn", "jwt",
    "cryptography", "boto3", "botocore", "jinja2", "prometheus_client", "structlog", "difflib",
    "asyncio", "ssl", "concurrent",
})


def _repository(path: Path) -> None:
    (path / ".ci.yaml").write_text("jobs:\n  test:\n    steps:\n      - run: echo hello\n")
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    for args in (["init", "--quiet"], ["add", "."], ["commit", "--quiet", "-m", "spec"]):
        subprocess.run(["git", *identity, *args], cwd=path, check=True, capture_output=True)


def _imported(command: str, directory: Path) -> set[str]:
    """Top-level packages `ferry COMMAND` imported from start to exit."""
    finished = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ci.cli", command], cwd=directory,
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr[-2000:]
    names = (line.split("|")[-1].strip() for line in finished.stderr.splitlines()
             if line.startswith("import time:") and "self [us]" not in line)
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("command", ["run", "lint"])
def test_local_commands_load_no_cluster_library(command: str, tmp_path: Path) -> None:
    _repository(tmp_path)
    imported = _imported(command, tmp_path)
    assert "yaml" in imported  # the listing is read right: the spec was parsed
    assert not imported & HEAVY, f"`ferry {command}` imported {sorted(imported & HEAVY)}"
