"""Git refs and pushed commits, the same on every forge: which pushes start a run, and the
event a push runs (each forge's `webhook.py` reads only what its payload spells its own way).
"""

from __future__ import annotations

from dataclasses import dataclass

from ci.forges.deliveries import Ignored
from ci.forges.payloads import Fields
from ci.forges.types import RepositoryRef
from pipelines.events import Event, EventKind

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


@dataclass(frozen=True, slots=True)
class PushedRef:
    """A pushed branch or tag that a run may start for (never both, never neither)."""

    ref: str
    branch: str | None
    tag: str | None


def pushed_ref(ref: str, after: str, *, deleted: bool = False) -> PushedRef | Ignored:
    """The branch or tag a push updated; `Ignored` for a deletion or any other ref."""
    branch, tag = branch_name(ref), tag_name(ref)
    if deleted or is_zero_sha(after):
        return Ignored(reason="tag deleted" if tag is not None else "branch deleted")
    if branch is None and tag is None:
        return Ignored(reason=f"push to {ref}, neither a branch nor a tag")
    return PushedRef(ref=ref, branch=branch, tag=tag)


def push_event(
    pushed: PushedRef,
    where: RepositoryRef,
    *,
    sha: str,
    author: str | None,
    commits: tuple[Fields, ...],
    complete: bool,
    happened_at: str | None,  # RFC 3339
    message: str | None,
) -> Event:
    """The event a push runs. `complete`: the payload lists every pushed commit since a
    known commit (else the changed files are unknown, and `when.paths` runs)."""
    return Event(
        kind=EventKind.PUSH if pushed.branch is not None else EventKind.TAG,
        repository=where.name,
        repository_url=where.clone_url,
        sha=sha,
        ref=pushed.ref,
        branch=pushed.branch,
        tag=pushed.tag,
        author=author or "",
        changed_files=changed_files(commits, complete=complete),
        happened_at=happened_at,
        message=message,
    )
