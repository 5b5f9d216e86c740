"""A model's step on the clock: a fixed length for cadences of a week or less, calendar
months (or quarters, years) for coarser ones, whose steps are 28 to 31 days long."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from pipeline.features.build import CALENDAR_STEP

#: How far a calendar step may stray from the model's (a median: 31 days for months).
CALENDAR_SLACK = 0.1
_MONTH_DAYS = 30.44
DAY = pd.Timedelta(days=1)
#: How far a daylight-saving change moves a local time in UTC.
DST_SHIFT = pd.Timedelta(hours=1)


def is_calendar(step: pd.Timedelta) -> bool:
    return step >= CALENDAR_STEP


def calendar_frequency(stamps: pd.Series) -> str | None:
    """The frequency a set's last distinct timestamps follow (``MS``, ``ME``, ``QS-JAN``,
    or a fixed ``28D``); with a period missing among them, the one their gaps are whole
    multiples of (``3MS``: quarter starts; ``28D``); None if they follow none."""
    recent = pd.DatetimeIndex(stamps.dropna().drop_duplicates().sort_values().iloc[-12:])
    if len(recent) < 3:
        return None
    found = pd.infer_freq(recent)
    if found is not None:
        return found
    months = np.diff(recent.year * 12 + recent.month)
    midnight = bool((recent == recent.normalize()).all())
    if midnight and (recent.day == 1).all() and months.min() > 0:
        return f"{np.gcd.reduce(months)}MS"
    if midnight and recent.is_month_end.all() and months.min() > 0:
        return f"{np.gcd.reduce(months)}ME"
    gaps = np.diff(recent.as_unit("s").asi8)
    unit = int(np.gcd.reduce(gaps))  # whole days of four weeks or more: 28-day data
    return f"{unit}s" if unit >= 28 * 86_400 and unit % 86_400 == 0 else None


def shifted(
    stamps: pd.DatetimeIndex, counts: np.ndarray, step: pd.Timedelta, frequency: str | None
) -> pd.DatetimeIndex:
    """Each stamp moved by its count of steps (negative: back): periods of ``frequency``
    where the set's timestamps follow one (calendar months, or a fixed 28 days), else a
    fixed length for a step under four weeks and whole months for a longer one."""
    if frequency is None and not is_calendar(step):
        return stamps + pd.to_timedelta(counts * step.total_seconds(), unit="s")
    if frequency is not None:
        offset = to_offset(frequency)
    else:
        offset = pd.DateOffset(months=max(1, round(step.days / _MONTH_DAYS)))
    return pd.DatetimeIndex(
        [stamp + int(count) * offset for stamp, count in zip(stamps, counts, strict=True)]
    )


def regular(gaps: pd.Series, step: pd.Timedelta) -> np.ndarray:
    """Whether each gap between consecutive timestamps is one step: exactly, within an hour
    of a step of a day or more (local midnights are 23 or 25 hours apart in UTC across a
    daylight-saving change, and training places them on its grid), or within
    ``CALENDAR_SLACK`` of a calendar step."""
    if step >= DAY and not is_calendar(step):
        seconds = gaps.dt.total_seconds().to_numpy(dtype="float64") - step.total_seconds()
        near: np.ndarray = np.abs(seconds) <= DST_SHIFT.total_seconds()
        return near
    if not is_calendar(step):
        return (gaps == step).to_numpy()
    ratios = gaps.dt.total_seconds().to_numpy(dtype="float64") / step.total_seconds()
    within: np.ndarray = np.abs(ratios - 1) <= CALENDAR_SLACK
    return within
