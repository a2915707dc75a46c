"""Bytecode for the Ferry processes a benchmark starts, as an installed Ferry has it.

pip writes `.pyc` files when it installs a wheel, and an image is built with them. With
`PYTHONDONTWRITEBYTECODE` set (as on some CI machines, and in this repository's development
environment) every process a benchmark starts would compile Ferry's source, and its
libraries', again: about half of `ferry run`'s import figure, and a second of a controller's
restart. The cache goes into the benchmark's scratch directory, not the checkout: the first
process writes it, the timed ones read it.
"""

from __future__ import annotations

from pathlib import Path


def bytecode_environment(scratch: Path) -> dict[str, str]:
    """Variables that give the processes started with them a bytecode cache under `scratch`
    (an empty `PYTHONDONTWRITEBYTECODE` is the same as none)."""
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(scratch / "bytecode")}
