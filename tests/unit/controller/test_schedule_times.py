"""Schedule times: cron in the schedule's zone, daylight saving, a missed time run once."""

from __future__ import annotations

import datetime

import pytest

from ci.controller.schedule_times import ScheduleError, ScheduleTimes, format_time, parse_time
from ci.kube.repositories import Schedule

UTC = datetime.UTC


def _times(cron: str, timezone: str = "UTC") -> ScheduleTimes:
    return ScheduleTimes.of(Schedule(name="nightly", cron=cron, branch="main", timezone=timezone))


def _at(text: str) -> datetime.datetime:
    parsed = parse_time(text)
    assert parsed is not None
    return parsed


def test_next_time_is_strictly_after_and_in_utc() -> None:
    times = _times("0 3 * * *")
    assert format_time(times.next_after(_at("2026-12-02T02:59:59Z"))) == "2026-12-02T03:00:00Z"
    assert format_time(times.next_after(_at("2026-12-02T03:00:00Z"))) == "2026-12-03T03:00:00Z"


def test_the_cron_fields_are_read_in_the_schedules_zone() -> None:
    times = _times("0 3 * * *", "Europe/Berlin")  # CET in winter: 03:00 is 02:00 UTC
    assert format_time(times.next_after(_at("2026-12-02T00:00:00Z"))) == "2026-12-02T02:00:00Z"
    summer = _times("0 3 * * *", "Europe/Berlin")  # CEST: 01:00 UTC
    assert format_time(summer.next_after(_at("2026-07-01T00:00:00Z"))) == "2026-07-01T01:00:00Z"


def test_a_time_in_the_spring_gap_runs_right_after_it_once() -> None:
    # 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    times = _times("30 2 * * *", "Europe/Berlin")
    first = times.next_after(_at("2026-03-28T12:00:00Z"))
    assert format_time(first) == "2026-03-29T01:00:00Z"  # 03:00 CEST
    assert format_time(times.next_after(first)) == "2026-03-30T00:30:00Z"  # 02:30 CEST


def test_a_time_the_autumn_repeats_runs_once() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    times = _times("30 2 * * *", "Europe/Berlin")
    first = times.next_after(_at("2026-10-24T12:00:00Z"))
    assert format_time(first) == "2026-10-25T00:30:00Z"  # 02:30 CEST, the first one
    assert format_time(times.next_after(first)) == "2026-10-26T01:30:00Z"  # next day, CET


def test_due_is_the_latest_time_in_the_window_and_only_one() -> None:
    times = _times("0 * * * *")  # hourly
    last = _at("2026-12-01T00:00:00Z")
    # A week-long outage: 168 hours missed, one run on recovery, for the latest of them.
    now = _at("2026-12-08T00:30:00Z")
    assert times.due(last=last, now=now) == _at("2026-12-08T00:00:00Z")


def test_due_includes_now_exactly_and_never_the_last_time_again() -> None:
    times = _times("*/5 * * * *")
    assert times.due(last=_at("2026-12-02T12:00:00Z"), now=_at("2026-12-02T12:05:00Z")) == _at(
        "2026-12-02T12:05:00Z")
    assert times.due(last=_at("2026-12-02T12:05:00Z"), now=_at("2026-12-02T12:09:59Z")) is None


def test_due_across_the_spring_gap() -> None:
    times = _times("30 2 * * *", "Europe/Berlin")
    due = times.due(last=_at("2026-03-28T12:00:00Z"), now=_at("2026-03-29T01:00:30Z"))
    assert due == _at("2026-03-29T01:00:00Z")


@pytest.mark.parametrize("cron", ["@daily", "@hourly", "0 3 * * 1-5"])
def test_macros_and_ranges_are_read(cron: str) -> None:
    assert _times(cron).next_after(_at("2026-12-02T12:00:00Z")) > _at("2026-12-02T12:00:00Z")


@pytest.mark.parametrize(("cron", "timezone", "words"), [
    ("61 * * * *", "UTC", "cron '61 * * * *'"),
    ("* * * *", "UTC", "cron '* * * *'"),
    ("0 3 * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
])
def test_a_bad_schedule_says_what_is_wrong(cron: str, timezone: str, words: str) -> None:
    with pytest.raises(ScheduleError, match=words.replace("*", r"\*")):
        _times(cron, timezone)


def test_times_parse_as_the_api_server_writes_them() -> None:
    assert parse_time("2026-12-02T03:00:00Z") == datetime.datetime(2026, 12, 2, 3, tzinfo=UTC)
    assert parse_time("yesterday") is None
