"""Cron arithmetic: the latest missed fire only, fires at ``now`` count, local time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.cron import latest_fire, next_fires, valid_cron, valid_timezone

NOW = datetime(2026, 11, 27, 3, 15, tzinfo=UTC)
NIGHT = datetime(2025, 10, 25, 20, 0, tzinfo=UTC)


def test_only_the_most_recent_missed_fire_is_due() -> None:
    assert latest_fire("*/15 * * * *", "UTC", NOW - timedelta(hours=5), NOW) == NOW
    later = NOW + timedelta(minutes=7)
    assert latest_fire("*/15 * * * *", "UTC", NOW - timedelta(hours=5), later) == NOW


def test_nothing_is_due_twice_or_before_after() -> None:
    assert latest_fire("*/15 * * * *", "UTC", NOW, NOW + timedelta(minutes=14)) is None
    assert latest_fire("0 0 1 1 *", "UTC", NOW - timedelta(days=1), NOW) is None


def test_fire_times_follow_the_schedule_time_zone() -> None:
    # 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
    assert next_fires("0 2 * * *", "Europe/Berlin", NOW, 2) == [
        datetime(2026, 11, 28, 1, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 1, 0, tzinfo=UTC),
    ]
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert next_fires("0 2 * * *", "Europe/Berlin", summer, 1) == [
        datetime(2026, 7, 2, 0, 0, tzinfo=UTC)
    ]


def polled(
    expression: str, timezone: str, after: datetime, start: datetime, hours: int
) -> list[datetime]:
    """The fires a scheduler polling every 10 minutes from ``start`` makes."""
    now, fires = start, []
    while now < start + timedelta(hours=hours):
        fire = latest_fire(expression, timezone, after, now)
        if fire is not None:
            fires.append(fire)
            after = fire
        now += timedelta(minutes=10)
    return fires


def test_a_daily_fire_in_the_hour_the_clock_goes_back_is_made_once() -> None:
    # 02:30 in Berlin on 2025-10-26 is 00:30 UTC (summer time), then again 01:30 UTC.
    after = datetime(2025, 10, 25, 0, 30, tzinfo=UTC)
    assert polled("30 2 * * *", "Europe/Berlin", after, NIGHT, 30) == [
        datetime(2025, 10, 26, 0, 30, tzinfo=UTC),
        datetime(2025, 10, 27, 1, 30, tzinfo=UTC),  # winter time
    ]


def test_validation() -> None:
    assert valid_cron("*/5 * * * *")
    assert not valid_cron("61 * * * *")
    assert not valid_cron("every day")
    assert not valid_cron("0 0 30 2 *"), "parses, but no February has a 30th"
    assert not valid_cron("0 0 31 4 *")
    assert valid_cron("0 0 29 2 *"), "every leap year"
    assert not valid_cron("0 0 1 1 * 0 2025"), "a year: its fires run out"
    assert valid_cron("@daily")
    assert valid_cron("@hourly")
    assert not valid_cron("@daily 5")
    stored_before = "0 0 1 1 * 0 2025"  # a schedule stored when a year was let through
    assert next_fires(stored_before, "UTC", NOW, 3) == []
    assert latest_fire("0 0 1 1 * 0 2030", "UTC", NOW - timedelta(days=1), NOW) is None
    assert not valid_cron("0 0 1 1 * 0"), "seconds"
    assert valid_timezone("Europe/Berlin")
    assert not valid_timezone("Mars/Olympus")
    assert not valid_timezone("../../etc/passwd")


def test_fires_in_the_hour_the_clock_goes_back_are_each_made() -> None:
    # New York's 01:00-02:00 on 2024-11-03 runs twice: 05:00-06:00 UTC, then 06:00-07:00.
    start = datetime(2024, 11, 3, 4, 50, tzinfo=UTC)
    half_hours = [start + timedelta(minutes=10 + 30 * n) for n in range(6)]
    fires = polled("*/30 * * * *", "America/New_York", start, start, 3)
    assert fires == half_hours  # 05:00 to 07:30 UTC, the repeated hour's two included
