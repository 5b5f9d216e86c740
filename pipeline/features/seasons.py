"""The periods a series repeats over, read from its cadence, and the lags, rolling windows
and calendar features that echo them.

- Sub-daily data repeats over a day and a week: lags one and two days and a week back,
  windows of a day and a week, and the time of day among the calendar features.
- Daily data repeats over a week: the same weekday one to four weeks back, windows of a
  week and four weeks, and (with a year of training) the same weekday a year back.
- Weekly and coarser data repeats over a year: the same week a year back, windows of
  about a month and a quarter; a day of the week or an hour would be constant.

Every lag is at least the horizon (a feature uses only what is known a horizon before
its row), and the three most recent such values come too. The year-old lag is read where
it exists and missing otherwise, so it costs a series no warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
#: The calendar features of each cadence (sub-daily data gets them all).
SUB_DAILY_CALENDAR: tuple[str, ...] = (
    "time_of_day",
    "day_of_week",
    "month",
    "day_of_year",
    "is_weekend",
)
DAILY_CALENDAR: tuple[str, ...] = ("day_of_week", "month", "day_of_year", "is_weekend")
COARSE_CALENDAR: tuple[str, ...] = ("month", "day_of_year")
#: Weeks back the same weekday of daily data is read, so that a daily model forecasting a
#: week ahead sees its weekday several times, not only in the lags just past its horizon.
DAILY_WEEK_ECHOES = 4
#: A year, in days, as a whole number of weeks: the same weekday a year back.
YEAR_OF_WEEKS_DAYS = 364


@dataclass(frozen=True)
class Seasons:
    """The seasonal features of a model: target lags (all within the warm-up), rolling
    windows over the horizon-old values, an optional year-old lag and calendar features."""

    lags: tuple[int, ...]
    windows: tuple[int, ...]
    year_lag: int | None
    calendar: tuple[str, ...]


def seasons_of(step_seconds: float, horizon: int, *, weekly: bool, yearly: bool) -> Seasons:
    """The seasons of data one step of ``step_seconds`` apart, forecast ``horizon`` steps
    ahead; ``weekly`` and ``yearly`` say whether the training part is long enough for the
    week's and the year's echoes."""
    recent = {horizon, horizon + 1, horizon + 2}
    if step_seconds < DAY_SECONDS:
        day = round(DAY_SECONDS / step_seconds)
        echoes = {day, 2 * day} | ({7 * day} if weekly else set())
        windows = (day, 7 * day) if weekly else (day,)
        year_lag, calendar = None, SUB_DAILY_CALENDAR
    elif step_seconds < WEEK_SECONDS:
        week = round(WEEK_SECONDS / step_seconds)
        echoes = {week * n for n in range(1, DAILY_WEEK_ECHOES + 1)} if weekly else set()
        windows = (week, DAILY_WEEK_ECHOES * week) if weekly else (week,)
        year_steps = round(YEAR_OF_WEEKS_DAYS * DAY_SECONDS / step_seconds)
        year_lag, calendar = (year_steps if yearly else None), DAILY_CALENDAR
    else:
        year_steps = round(YEAR_OF_WEEKS_DAYS * DAY_SECONDS / step_seconds)
        echoes = set()
        windows = (max(2, round(year_steps / 12)), max(3, round(year_steps / 4)))
        year_lag, calendar = (year_steps if yearly else None), COARSE_CALENDAR
    lags = tuple(sorted(k for k in recent | echoes if k >= horizon))
    reach = math.ceil(horizon / year_lag) * year_lag if year_lag else None
    if reach in lags:  # a year ahead: the year-old value is one of the recent ones
        reach = None
    return Seasons(lags, windows, reach, calendar)
