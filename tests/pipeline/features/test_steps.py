"""How a model's step moves a timestamp: calendar months for month-long steps, the set's
own frequency where its timestamps follow one (a fixed 28 days is no month), a fixed
length for shorter steps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.features.steps import calendar_frequency, regular, shifted

DAYS_31 = pd.Timedelta(days=31)


def two_series(stamps: pd.DatetimeIndex) -> pd.Series:
    """Two series' timestamps, as a set's rows hold them: each time twice."""
    return pd.Series(np.repeat(stamps, 2))


def test_month_ends_and_starts_of_several_series_step_by_months() -> None:
    ends = pd.date_range("2024-01-31", periods=4, freq="ME", tz="UTC")
    frequency = calendar_frequency(two_series(ends))
    assert frequency == "ME"
    moved = shifted(pd.DatetimeIndex([ends[-1]] * 3), np.array([1, 2, -2]), DAYS_31, frequency)
    assert [d.strftime("%m-%d") for d in moved] == ["05-31", "06-30", "02-29"]
    starts = pd.date_range("2024-01-01", periods=4, freq="MS", tz="UTC")
    assert calendar_frequency(two_series(starts)) == "MS"


def test_a_fixed_four_weeks_is_no_month() -> None:
    four_weekly = pd.date_range("2024-01-01", periods=6, freq="28D", tz="UTC")
    frequency = calendar_frequency(two_series(four_weekly))
    moved = shifted(
        pd.DatetimeIndex([four_weekly[-1]]), np.array([1]), pd.Timedelta(days=28), frequency
    )
    assert moved[0] == four_weekly[-1] + pd.Timedelta(days=28)


def test_shorter_steps_are_fixed_and_months_may_differ_in_length() -> None:
    hour = pd.Timedelta(hours=1)
    hours = pd.Series(pd.to_timedelta(["1h", "1h", "2h"]))
    assert regular(hours, hour).tolist() == [True, True, False]
    months = pd.Series(pd.to_timedelta(["28D", "31D", "30D", "62D"]))
    assert regular(months, DAYS_31).tolist() == [True, True, True, False]
    moved = shifted(pd.DatetimeIndex(["2024-01-01T00:00Z"]), np.array([3]), hour, None)
    assert moved[0] == pd.Timestamp("2024-01-01T03:00Z")


def test_local_midnights_across_a_daylight_saving_change_are_a_day_apart() -> None:
    """Daily rows at Berlin midnights are 25 hours apart in UTC on October 27th: served
    requests over it had been refused as uneven."""
    midnights = pd.date_range("2024-10-25", periods=5, freq="D", tz="Europe/Berlin")
    gaps = pd.Series(midnights.tz_convert("UTC")).diff().iloc[1:]
    assert gaps.dt.total_seconds().div(3600).tolist() == [24, 24, 25, 24]
    assert regular(gaps, pd.Timedelta(days=1)).all()
    two_days = pd.Series(pd.to_timedelta(["2D", "1D 22h"]))
    assert regular(two_days, pd.Timedelta(days=1)).tolist() == [False, False]


def test_a_missing_period_leaves_the_frequency_its_gaps_are_multiples_of() -> None:
    """One period missing among the last twelve: pandas names no frequency, and 28-day
    data had been stepped by calendar months (+29, +58, +88 days), off its own dates."""
    cases = [
        ("2024-01-01", "28D", pd.Timedelta(days=28), ["2025-01-27", "2025-02-24"]),
        ("2020-01-01", "MS", DAYS_31, ["2021-03-01", "2021-04-01"]),
        ("2020-01-01", "QS", pd.Timedelta(days=91), ["2023-07-01", "2023-10-01"]),
        ("2020-01-31", "ME", DAYS_31, ["2021-03-31", "2021-04-30"]),
    ]
    for first, frequency, step, expected in cases:
        stamps = pd.date_range(first, periods=14, freq=frequency, tz="UTC").delete(10)
        found = calendar_frequency(two_series(stamps))
        moved = shifted(pd.DatetimeIndex([stamps[-1]] * 2), np.array([1, 2]), step, found)
        assert [d.strftime("%Y-%m-%d") for d in moved] == expected, frequency
    # Months on the 15th have no name in pandas: they step by months, not by the days
    # their gaps share.
    mid = pd.date_range("2023-01-15", periods=12, freq="MS", tz="UTC") + pd.Timedelta(days=14)
    found = calendar_frequency(two_series(mid))
    assert found is None
    moved = shifted(pd.DatetimeIndex([mid[-1]] * 2), np.array([1, 2]), DAYS_31, found)
    assert [d.strftime("%Y-%m-%d") for d in moved] == ["2024-02-15", "2024-03-15"]
