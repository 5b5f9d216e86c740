"""Cron arithmetic for schedules, in the schedule's own time zone (pure, on croniter).

Fire times are computed in the schedule's zone, so ``0 2 * * *`` in Europe/Berlin fires at
02:00 local time across daylight-saving changes, and returned in UTC.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter


def valid_cron(expression: str) -> bool:
    """Whether ``expression`` is a five-field cron expression (or a nickname such as
    ``@daily``) that ever fires (``0 0 30 2 *`` parses, but no February has a 30th).
    croniter's sixth and seventh fields (seconds, a year) are refused: a year's fires run
    out, and a schedule must go on."""
    fields = len(expression.split())
    if fields != 5 and not (fields == 1 and expression.startswith("@")):
        return False
    if not croniter.is_valid(expression):
        return False
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        return False
    return True


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def latest_fire(expression: str, timezone: str, after: datetime, now: datetime) -> datetime | None:
    """The most recent fire time in (after, now], or None: after downtime only the latest
    missed fire is returned, never a backlog. The hour a clock goes back repeats its local
    times; a fire at a time ``after`` already had is the same fire, and not made again."""
    zone = ZoneInfo(timezone)
    # A fire at ``now`` counts; the second is added in UTC, as local arithmetic would lose
    # which of a repeated hour's two times ``now`` is.
    local = (now + timedelta(seconds=1)).astimezone(zone)
    try:
        fire: datetime = croniter(expression, local).get_prev(datetime).astimezone(UTC)
    except CroniterBadDateError:  # a year-bound expression stored before: none yet
        return None
    if not after < fire <= now:
        return None
    repeated = _wall_clock(fire, zone) == _wall_clock(after, zone)
    return None if repeated else fire


def _wall_clock(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None, fold=0)


def next_fires(expression: str, timezone: str, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``now``, in UTC (fewer if they run out, as a
    year-bound expression stored before five fields were required does)."""
    schedule = croniter(expression, now.astimezone(ZoneInfo(timezone)))
    fires: list[datetime] = []
    with contextlib.suppress(CroniterBadDateError):
        while len(fires) < count:
            fires.append(schedule.get_next(datetime).astimezone(UTC))
    return fires
