"""When a Repository's schedule is due: cron times in the schedule's time zone, pure.

The clock is the caller's (`now` is an argument): the controller passes the real one, tests
their own. Times are read by `cronsim` in the schedule's IANA zone, as cron does across a
daylight saving change: a time inside the spring gap runs at the first minute after it (02:30
on a day that jumps from 02:00 to 03:00 runs at 03:00), and a time the autumn repeats runs
once (at its first occurrence).

A missed time (the controller was down, or not leading) is caught up once: `due` is the latest
time in (`last`, `now`], never the list of every one missed, so a week-long outage of an
hourly schedule starts one run on recovery, not 168.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

from cronsim import CronSim, CronSimError

from ci.kube.repositories import Schedule

# The macros the CRD allows, as cron(8) reads them.
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class ScheduleError(ValueError):
    """A schedule whose cron expression or time zone cannot be read."""


@dataclass(frozen=True, slots=True)
class ScheduleTimes:
    cron: str
    zone: zoneinfo.ZoneInfo

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleTimes:
        """Raises `ScheduleError` naming what is wrong."""
        try:
            zone = zoneinfo.ZoneInfo(schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ScheduleError(f"unknown time zone {schedule.timezone!r}") from error
        times = cls(MACROS.get(schedule.cron.strip(), schedule.cron), zone)
        try:
            CronSim(times.cron, datetime.datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as error:
            raise ScheduleError(f"cron {schedule.cron!r}: {error}") from error
        return times

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first time strictly after `moment`, in UTC."""
        local = moment.astimezone(self.zone)
        found: datetime.datetime = next(CronSim(self.cron, local))
        return found.astimezone(datetime.UTC)

    def latest_at_or_before(self, moment: datetime.datetime) -> datetime.datetime:
        """The last time at or before `moment`, in UTC."""
        # cronsim's reverse iteration is strictly before its start, and works on whole
        # minutes: start just after `moment`'s minute ends.
        start = moment.astimezone(self.zone).replace(second=0, microsecond=0)
        start += datetime.timedelta(minutes=1)
        found: datetime.datetime = next(CronSim(self.cron, start, reverse=True))
        return found.astimezone(datetime.UTC)

    def due(self, *, last: datetime.datetime, now: datetime.datetime
            ) -> datetime.datetime | None:
        """The one time to start now: the latest in (`last`, `now`]; None if there is none."""
        latest = self.latest_at_or_before(now)
        return latest if latest > last else None


def parse_time(text: str) -> datetime.datetime | None:
    """An RFC 3339 time as the API server stores it; None if it is not one."""
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
