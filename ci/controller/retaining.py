"""The controller's retention pass over the log archive (the leader's, every
`archive.retention_interval` seconds): what `ci.archive.retention` decides, applied.

A Repository that is gone (deleted while the controller ran or while it was down: the pass
compares the archive with the Repositories the watch lists) has its logs marked, and they
go once the retention period has passed since. A Repository made again under the same name
has the mark taken off: its old runs' logs age as any others.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import structlog

from ci.archive import retention
from ci.archive.layout import DELETED, repository_prefix
from ci.archive.retention import RetentionRules
from ci.archive.store import LogStore
from ci.kube.repositories import Repository

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionPass:
    deleted: int  # objects deleted
    marked: tuple[str, ...]  # "namespace/repository" newly marked deleted
    unmarked: tuple[str, ...]  # marks taken off (the Repository exists again)


def retain(archive: LogStore, *, rules: RetentionRules, repositories: Iterable[Repository],
           namespaces: Collection[str], now: datetime.datetime) -> RetentionPass:
    """One pass. `namespaces`: those the controller watches (empty: all); logs of other
    namespaces are left alone, since this controller cannot see their Repositories."""
    existing = {(repository.namespace, repository.name) for repository in repositories}
    watched = set(namespaces)
    objects = [stored for stored in archive.list("")
               if not watched or stored.name.split("/", 1)[0] in watched]
    seen: set[tuple[str, str]] = set()
    marks: set[tuple[str, str]] = set()
    for stored in objects:
        parts = stored.name.split("/")
        if len(parts) < 3:
            continue
        if len(parts) == 3 and parts[2] == DELETED:
            marks.add((parts[0], parts[1]))
        else:
            seen.add((parts[0], parts[1]))
    marked: list[str] = []
    for namespace, name in sorted(seen - existing - marks):
        retention.mark_repository_deleted(archive, namespace=namespace, repository=name, now=now)
        marked.append(f"{namespace}/{name}")
    unmarked = sorted(marks & existing)
    archive.delete(f"{repository_prefix(namespace, name)}{DELETED}" for namespace, name in unmarked)
    # Marks just written or taken off count from the next pass: `objects` is from before.
    taken_off = {repository_prefix(namespace, name) + DELETED for namespace, name in unmarked}
    kept = [stored for stored in objects if stored.name not in taken_off]
    doomed = retention.plan_deletions(kept, rules=rules, now=now)
    archive.delete(doomed)
    result = RetentionPass(deleted=len(doomed), marked=tuple(marked),
                           unmarked=tuple(f"{namespace}/{name}" for namespace, name in unmarked))
    if doomed or marked or unmarked:
        log.info("retention pass", deleted=result.deleted, marked=list(result.marked),
                 unmarked=list(result.unmarked))
    return result
