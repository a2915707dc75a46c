"""Git refs and pushed commits, the same on every forge."""

from __future__ import annotations

from ci.forges.payloads import Fields

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"


def is_zero_sha(sha: str) -> bool:
    """Forges write a missing side of a ref update (created, deleted) as all zeros."""
    return bool(sha) and set(sha) == {"0"}


def branch_name(ref: str) -> str | None:
    return ref.removeprefix(BRANCH_PREFIX) if ref.startswith(BRANCH_PREFIX) else None


def tag_name(ref: str) -> str | None:
    return ref.removeprefix(TAG_PREFIX) if ref.startswith(TAG_PREFIX) else None


def changed_files(commits: tuple[Fields, ...], *, complete: bool) -> tuple[str, ...] | None:
    """Files added, modified or removed across the pushed commits, sorted; None if unknown.

    Unknown (so a `when.paths` filter does not skip the run) when the forge cut the commit list
    short (`complete` False), when there are no commits to look at (a new branch, a reset),
    or when a commit lacks the file lists (old Gitea payloads).
    """
    if not complete or not commits:
        return None
    files: set[str] = set()
    for commit in commits:
        for key in ("added", "modified", "removed"):
            names = commit.optional_texts(key)
            if names is None:
                return None
            files.update(names)
    return tuple(sorted(files))
