"""Which archived logs to delete: by age, by total size per repository, and after a
Repository was deleted. Independent of run pruning: a pruned PipelineRun keeps its logs.

The unit is the run: a run's logs are kept or deleted together, so a kept run never shows
some steps and not others. A run's age is that of its newest object.
"""

from __future__ import annotations

import datetime
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from ci.archive.layout import DELETED, repository_prefix
from ci.archive.store import LogStore, StoredObject


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionRules:
    # Days a run's logs are kept (`archive.retention_days`).
    max_age_days: float
    # Bytes of (compressed) logs kept per repository, newest runs first; None: no limit
    # (`archive.retention_bytes_per_repository`).
    max_bytes_per_repository: int | None


@dataclass(slots=True)
class _Run:
    objects: list[StoredObject] = field(default_factory=list)

    @property
    def newest(self) -> datetime.datetime:
        return max(stored.modified for stored in self.objects)

    @property
    def size(self) -> int:
        return sum(stored.size for stored in self.objects)


def plan_deletions(objects: Iterable[StoredObject], *, rules: RetentionRules,
                   now: datetime.datetime) -> list[str]:
    """The names to delete so that what is left keeps to `rules`."""
    max_age = datetime.timedelta(days=rules.max_age_days)
    repositories: dict[str, dict[str, _Run]] = {}
    markers: dict[str, StoredObject] = {}
    for stored in objects:
        parts = stored.name.split("/")
        if len(parts) < 3:
            continue
        repository = "/".join(parts[:2])
        if len(parts) == 3 and parts[2] == DELETED:
            markers[repository] = stored
            continue
        runs = repositories.setdefault(repository, {})
        runs.setdefault(parts[2], _Run()).objects.append(stored)
    doomed: list[str] = []
    for repository, runs in sorted(repositories.items()):
        marker = markers.get(repository)
        if marker is not None and now - marker.modified >= max_age:
            doomed.extend(stored.name for run in runs.values() for stored in run.objects)
            continue
        kept = 0
        for _name, run in sorted(runs.items(), key=lambda item: item[1].newest, reverse=True):
            too_old = now - run.newest >= max_age
            too_big = (rules.max_bytes_per_repository is not None
                       and kept + run.size > rules.max_bytes_per_repository)
            if too_old or too_big:
                doomed.extend(stored.name for stored in run.objects)
            else:
                kept += run.size
    for marker in markers.values():
        if now - marker.modified >= max_age:
            doomed.append(marker.name)
    return doomed


def apply(store: LogStore, *, rules: RetentionRules, now: datetime.datetime) -> int:
    """Delete what `plan_deletions` names; the number of objects deleted."""
    doomed = plan_deletions(store.list(""), rules=rules, now=now)
    store.delete(doomed)
    return len(doomed)


def mark_repository_deleted(store: LogStore, *, namespace: str, repository: str,
                            now: datetime.datetime) -> None:
    """A deleted Repository's logs go after the retention period, counted from now (its runs
    are gone with it, so nothing else would ever delete them)."""
    with tempfile.TemporaryFile() as file:
        file.write(json.dumps({"deletedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode())
        file.seek(0)
        store.put(f"{repository_prefix(namespace, repository)}{DELETED}", file)
