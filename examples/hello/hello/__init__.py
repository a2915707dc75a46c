"""A tiny app for Ferry's example pipeline: something real to lint and test."""

from __future__ import annotations


def greeting(name: str = "world") -> str:
    """The greeting for `name`; blank names are greeted as the world."""
    return f"Hello, {name.strip() or 'world'}!"
