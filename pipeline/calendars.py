"""Public-holiday calendars from the ``holidays`` package, named by country or subdivision."""

from __future__ import annotations

from functools import lru_cache

import holidays
import pandas as pd


def _parts(code: str) -> tuple[str, str | None]:
    country, _, subdivision = code.partition("-")
    return country, subdivision or None


def check_holiday_code(code: str) -> str:
    """``code`` if the ``holidays`` package knows it.

    Raises:
        ValueError: an unknown country or subdivision, with the expected form.
    """
    country, subdivision = _parts(code)
    try:
        holidays.country_holidays(country, subdiv=subdivision, years=2024)
    except NotImplementedError as exc:
        raise ValueError(
            f"unknown holiday calendar {code!r} ({exc}): use an ISO 3166 country code such "
            "as 'FR', or a country-subdivision code such as 'AU-VIC'"
        ) from exc
    return code


@lru_cache(maxsize=32)
def holiday_dates(code: str, first_year: int, end_year: int) -> pd.DatetimeIndex:
    """The holidays of ``code`` (``"FR"``, ``"AU-VIC"``) in the years [first_year, end_year)."""
    country, subdivision = _parts(code)
    calendar = holidays.country_holidays(
        country, subdiv=subdivision, years=range(first_year, end_year)
    )
    return pd.DatetimeIndex(sorted(pd.Timestamp(day) for day in calendar))


def holiday_flags(stamps: pd.Series, code: str) -> pd.Series:
    """1 where a timestamp's calendar date is a holiday of ``code``, else 0."""
    days = stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps
    days = days.dt.normalize()
    dates = holiday_dates(code, int(days.dt.year.min()) - 1, int(days.dt.year.max()) + 2)
    flags: pd.Series = days.isin(dates).astype(int)
    return flags
