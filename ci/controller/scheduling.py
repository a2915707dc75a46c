"""Starting `spec.schedules`: one RunRequest per scheduled time, by the leader only.

Each tick (every `interval` seconds of the real clock) looks at every Repository's schedules
against `clock()` (the caller's: the real one in production, the test's in tests):

1. the schedule's mark, `status.schedules[].lastTime`, is the last time started; a schedule
   without one (new, or its cron changed) is marked `now` and nothing is started for the
   times before it;
2. `ScheduleTimes.due` is the latest time in (mark, now]: a time missed while no controller
   led is started once on recovery, never one run per missed time;
3. the RunRequest for that time has one name (Repository, schedule, time): a second leader
   after a failover, or this one before its status write was seen, gets 409 and starts
   nothing new. Only then is the mark moved, so a failed create is tried again next tick;
4. the status gets each schedule's mark and next time, and `nextScheduledRun` (the
   Repository's earliest), which `kubectl get repositories` shows.

The receiver turns each RunRequest into at most one run (`webhooks/requests.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from ci.controller.schedule_times import ScheduleError, ScheduleTimes, format_time, parse_time
from ci.kube.errors import ApiRefusedError, ApiUnavailableError
from ci.kube.repositories import Repository, Schedule
from ci.kube.run_requests import schedule_body

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime.datetime]


def real_clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Leader(Protocol):
    def held(self) -> bool: ...


class RepositorySource(Protocol):
    def all(self) -> tuple[Repository, ...]: ...


class Creator(Protocol):
    def create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]: ...


StatusWriter = Callable[[Repository, dict[str, Any]], None]


class Scheduler:
    def __init__(self, *, repositories: RepositorySource, requests: Creator,
                 write_status: StatusWriter, leadership: Leader, clock: Clock,
                 requester: Callable[[], str], interval: float) -> None:
        self._repositories = repositories
        self._requests = requests
        self._write_status = write_status
        self._leadership = leadership
        self._clock = clock
        self._requester = requester  # this controller's user name, for `requestedBy`
        self._interval = interval
        # What this process wrote last, per Repository uid: the watch may not show it yet.
        self._written: dict[str, dict[str, Any]] = {}
        # (last time, its RunRequest) per (Repository uid, schedule, cron).
        self._marks: dict[tuple[str, str, str], tuple[datetime.datetime, str]] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.tick()
            except Exception as error:  # one bad tick must not end scheduling
                log.exception("schedule tick failed", error=repr(error)[:300])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._interval)

    async def tick(self) -> None:
        for repository in self._repositories.all():
            if not self._leadership.held():
                return
            if repository.schedules or repository.schedule_marks:
                await self._repository(repository)

    async def _repository(self, repository: Repository) -> None:
        now = self._clock()
        entries = []
        for schedule in repository.schedules:
            entries.append(await self._schedule(repository, schedule, now))
        upcoming = [entry["nextTime"] for entry in entries if entry.get("nextTime")]
        status: dict[str, Any] = {"schedules": entries,
                                  "nextScheduledRun": min(upcoming) if upcoming else None}
        # By uid: a Repository deleted and made again under its name starts afresh.
        if self._written.get(repository.uid) == status:
            return
        if not self._leadership.held():
            return
        try:
            await asyncio.to_thread(self._write_status, repository, status)
        except (ApiUnavailableError, ApiRefusedError) as error:
            log.warning("could not write the schedules' status", repository=repository.key,
                        error=str(error))
            return
        self._written[repository.uid] = status

    async def _schedule(self, repository: Repository, schedule: Schedule,
                        now: datetime.datetime) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": schedule.name, "cron": schedule.cron}
        try:
            times = ScheduleTimes.of(schedule)
        except ScheduleError as error:
            entry["error"] = str(error)
            return entry
        key = (repository.uid, schedule.name, schedule.cron)
        mark = self._known(key, repository, schedule)
        if mark is None:
            mark = (now, "")  # first seen: times before now are not this schedule's to run
            log.info("schedule seen", repository=repository.key, schedule=schedule.name)
        due = times.due(last=mark[0], now=now)
        if due is not None and self._leadership.held():
            made = await self._start(repository, schedule, due)
            if made is not None:
                mark = (due, made)
        self._marks[key] = mark
        entry["lastTime"] = format_time(mark[0])
        if mark[1]:
            entry["lastRunRequest"] = mark[1]
        entry["nextTime"] = format_time(times.next_after(max(mark[0], now)))
        return entry

    def _known(self, key: tuple[str, str, str], repository: Repository, schedule: Schedule
               ) -> tuple[datetime.datetime, str] | None:
        """The later of this process's own mark and the status's (the watch may lag behind
        this process's writes, or another leader may have written since)."""
        known = [mark for mark in (self._marks.get(key), _recorded(repository, schedule))
                 if mark is not None]
        return max(known, key=lambda mark: mark[0]) if known else None

    async def _start(self, repository: Repository, schedule: Schedule,
                     due: datetime.datetime) -> str | None:
        """The RunRequest's name once it exists (made now or before); None: try again."""
        try:
            requested_by = await asyncio.to_thread(self._requester)
            body = schedule_body(namespace=repository.namespace, repository=repository.name,
                                 schedule=schedule.name, branch=schedule.branch, moment=due,
                                 requested_by=requested_by, repository_uid=repository.uid)
            _, created = await asyncio.to_thread(self._requests.create, body)
        except (ApiUnavailableError, ApiRefusedError) as error:
            log.warning("could not start a scheduled run", repository=repository.key,
                        schedule=schedule.name, time=format_time(due), error=str(error))
            return None
        name = str(body["metadata"]["name"])
        log.info("scheduled run requested" if created else "scheduled run already requested",
                 repository=repository.key, schedule=schedule.name, time=format_time(due),
                 run_request=name)
        return name


def _recorded(repository: Repository, schedule: Schedule
              ) -> tuple[datetime.datetime, str] | None:
    """The mark `status.schedules[]` holds for `schedule`, for its current cron only."""
    for mark in repository.schedule_marks:
        if mark.name == schedule.name and mark.cron == schedule.cron:
            time = parse_time(mark.last_time)
            return (time, mark.last_run_request) if time is not None else None
    return None
