"""The scheduler's decisions with the API server replaced by recorders: the first look marks
and starts nothing, a due time is requested before it is marked, a failed create is tried
again, a bad schedule says why, a follower does nothing."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from ci.controller.scheduling import Scheduler
from ci.kube.errors import ApiUnavailableError
from ci.kube.repositories import Repository, Schedule, ScheduleMark, SecretKeys

UTC = datetime.UTC


def _repository(*schedules: Schedule, marks: tuple[ScheduleMark, ...] = ()) -> Repository:
    return Repository(namespace="team", name="shop", uid="u", forge="github",
                      url="https://github.com/acme/shop", secret=SecretKeys(name="s"),
                      schedules=schedules, schedule_marks=marks)


NIGHTLY = Schedule(name="nightly", cron="0 3 * * *", branch="main")


class _Recorder:
    def __init__(self, repository: Repository, *, failing: int = 0) -> None:
        self.repository = repository
        self.created: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.failing = failing
        self.leading = True
        self.now = datetime.datetime(2026, 12, 2, 1, 0, tzinfo=UTC)

    def all(self) -> tuple[Repository, ...]:
        return (self.repository,)

    def create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        if self.failing:
            self.failing -= 1
            raise ApiUnavailableError("create RunRequest: 503")
        self.created.append(body)
        return body, True

    def write(self, repository: Repository, status: dict[str, Any]) -> None:
        self.statuses.append(status)

    def held(self) -> bool:
        return self.leading

    def scheduler(self) -> Scheduler:
        return Scheduler(repositories=self, requests=self, write_status=self.write,
                         leadership=self, clock=lambda: self.now,
                         requester=lambda: "system:serviceaccount:ferry-system:ferry-controller",
                         interval=1.0)


def _tick(scheduler: Scheduler) -> None:
    asyncio.run(scheduler.tick())


def test_the_first_look_marks_now_and_starts_nothing() -> None:
    recorder = _Recorder(_repository(NIGHTLY))
    _tick(recorder.scheduler())
    assert recorder.created == []
    assert recorder.statuses == [{
        "schedules": [{"name": "nightly", "cron": "0 3 * * *",
                       "lastTime": "2026-12-02T01:00:00Z", "nextTime": "2026-12-02T03:00:00Z"}],
        "nextScheduledRun": "2026-12-02T03:00:00Z"}]


def test_a_due_time_is_requested_once_under_its_name_then_marked() -> None:
    mark = ScheduleMark(name="nightly", cron="0 3 * * *", last_time="2026-12-01T03:00:00Z")
    recorder = _Recorder(_repository(NIGHTLY, marks=(mark,)))
    recorder.now = datetime.datetime(2026, 12, 4, 7, 0, tzinfo=UTC)  # two days late
    scheduler = recorder.scheduler()
    _tick(scheduler)
    _tick(scheduler)  # the watch has not shown the new status yet: nothing again
    [body] = recorder.created
    assert body["metadata"]["name"] == "shop-nightly-20261204-0300"
    assert body["spec"] == {"repository": "shop", "event": "schedule", "branch": "main",
                            "schedule": "nightly", "scheduledTime": "2026-12-04T03:00:00Z",
                            "requestedBy": "system:serviceaccount:ferry-system:ferry-controller"}
    [status] = recorder.statuses  # the second tick had nothing new to write
    assert status["schedules"][0]["lastTime"] == "2026-12-04T03:00:00Z"
    assert status["schedules"][0]["lastRunRequest"] == "shop-nightly-20261204-0300"
    assert status["nextScheduledRun"] == "2026-12-05T03:00:00Z"


def test_a_failed_create_keeps_the_mark_and_is_tried_again() -> None:
    mark = ScheduleMark(name="nightly", cron="0 3 * * *", last_time="2026-12-01T03:00:00Z")
    recorder = _Recorder(_repository(NIGHTLY, marks=(mark,)), failing=1)
    recorder.now = datetime.datetime(2026, 12, 2, 3, 0, 20, tzinfo=UTC)
    scheduler = recorder.scheduler()
    _tick(scheduler)
    assert recorder.created == []
    assert recorder.statuses[-1]["schedules"][0]["lastTime"] == "2026-12-01T03:00:00Z"
    _tick(scheduler)
    assert [b["metadata"]["name"] for b in recorder.created] == ["shop-nightly-20261202-0300"]
    assert recorder.statuses[-1]["schedules"][0]["lastTime"] == "2026-12-02T03:00:00Z"


def test_a_changed_cron_starts_afresh_from_now() -> None:
    mark = ScheduleMark(name="nightly", cron="0 1 * * *", last_time="2026-11-01T01:00:00Z")
    recorder = _Recorder(_repository(NIGHTLY, marks=(mark,)))
    _tick(recorder.scheduler())
    assert recorder.created == []
    assert recorder.statuses[-1]["schedules"][0]["lastTime"] == "2026-12-02T01:00:00Z"


def test_a_bad_schedule_says_why_and_the_others_still_run() -> None:
    broken = Schedule(name="broken", cron="0 3 * * *", branch="main", timezone="Mars/Base")
    recorder = _Recorder(_repository(broken, NIGHTLY))
    _tick(recorder.scheduler())
    entries = recorder.statuses[-1]["schedules"]
    assert entries[0] == {"name": "broken", "cron": "0 3 * * *",
                          "error": "unknown time zone 'Mars/Base'"}
    assert entries[1]["nextTime"] == "2026-12-02T03:00:00Z"


def test_a_follower_neither_requests_nor_writes() -> None:
    mark = ScheduleMark(name="nightly", cron="0 3 * * *", last_time="2026-12-01T03:00:00Z")
    recorder = _Recorder(_repository(NIGHTLY, marks=(mark,)))
    recorder.leading = False
    recorder.now = datetime.datetime(2026, 12, 2, 3, 0, 20, tzinfo=UTC)
    _tick(recorder.scheduler())
    assert recorder.created == []
    assert recorder.statuses == []
