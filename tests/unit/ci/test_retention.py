"""Which archived logs retention deletes: a table of stores' listings, no storage needed."""

from __future__ import annotations

import datetime
from pathlib import Path

from ci.archive.retention import RetentionRules, plan_deletions
from ci.archive.store import StoredObject
from tests.defaults import archive_defaults

NOW = datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.UTC)


def stored(name: str, *, days_old: float, size: int = 100) -> StoredObject:
    return StoredObject(name=name, size=size, modified=NOW - datetime.timedelta(days=days_old))


# An age limit alone: no size limit.
BY_AGE = RetentionRules(max_age_days=30, max_bytes_per_repository=None)


def run(repository: str, name: str, *, days_old: float, size: int = 100) -> list[StoredObject]:
    prefix = f"team/{repository}/{name}/build/test"
    return [stored(f"{prefix}.log.gz", days_old=days_old, size=size),
            stored(f"{prefix}.json", days_old=days_old, size=1)]


def test_runs_past_the_age_limit_go_whole_and_younger_ones_stay() -> None:
    objects = [*run("app", "old", days_old=31), *run("app", "young", days_old=29)]
    doomed = plan_deletions(objects, rules=BY_AGE, now=NOW)
    assert sorted(doomed) == ["team/app/old/build/test.json", "team/app/old/build/test.log.gz"]


def test_the_size_limit_keeps_the_newest_runs_of_each_repository() -> None:
    objects = [*run("app", "r1", days_old=3, size=400), *run("app", "r2", days_old=2, size=400),
               *run("app", "r3", days_old=1, size=400), *run("other", "r1", days_old=3, size=400)]
    rules = RetentionRules(max_age_days=30, max_bytes_per_repository=900)
    doomed = plan_deletions(objects, rules=rules, now=NOW)
    # r3 and r2 fit (802 bytes); r1 would not. The other repository has its own budget.
    assert sorted({name.split("/")[2] for name in doomed if name.startswith("team/app/")}) == ["r1"]
    assert not [name for name in doomed if name.startswith("team/other/")]


def test_a_deleted_repositorys_logs_go_after_the_retention_period() -> None:
    young = run("gone", "r1", days_old=1)  # would be kept by age and size alone
    recent = [*young, stored("team/gone/deleted.json", days_old=5)]
    assert plan_deletions(recent, rules=BY_AGE, now=NOW) == []
    expired = [*young, stored("team/gone/deleted.json", days_old=31)]
    doomed = plan_deletions(expired, rules=BY_AGE, now=NOW)
    assert sorted(doomed) == sorted(o.name for o in expired)


def test_nothing_is_deleted_within_the_rules() -> None:
    objects = [*run("app", "r1", days_old=1), *run("app", "r2", days_old=0)]
    assert plan_deletions(objects, rules=archive_defaults(Path("unused")).retention,
                          now=NOW) == []
