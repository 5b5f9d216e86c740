"""Intervals rescaled by their recent misses: which actuals they read, and by how much."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.scoring.adaptation import (
    DAY,
    ForecastRows,
    RecentMisses,
    adapted_interval,
    miss_ratios,
    window_quantiles,
)
from pipeline.scoring.intervals import conformal_quantile

HOUR = pd.Timedelta(hours=1)
QUANTILES = (0.1, 0.5, 0.9)
STEPS = 24 * 40


def rows(
    actual: np.ndarray,
    series: np.ndarray | None = None,
    out_of_sample_from: pd.Timestamp | None = None,
) -> ForecastRows:
    """Hourly forecasts of 0 with the interval -1..1 (P50 at 0.2), a day ahead."""
    n = len(actual)
    start = pd.Timestamp("2024-01-01")
    stamps = pd.date_range(start, periods=n, freq="h").to_numpy()
    if series is not None:  # the same hours for every series
        stamps = np.concatenate([stamps[: n // 2], stamps[: n // 2]])
    bounds = np.column_stack([np.full(n, -1.0), np.full(n, 0.2), np.full(n, 1.0)])
    return ForecastRows(
        point=np.zeros(n),
        bounds=bounds,
        actual=actual,
        timestamps=stamps,
        series=series,
        lead=DAY,
        step=HOUR,
        out_of_sample_from=out_of_sample_from or start,
    )


def test_without_known_actuals_the_interval_stays_as_calibrated() -> None:
    unknown = rows(np.full(STEPS, np.nan))
    assert np.array_equal(RecentMisses().adapt(unknown, QUANTILES), unknown.bounds)


def test_misses_widen_the_interval_by_their_quantile_shrunk_by_the_prior() -> None:
    # Every actual lands at twice the half-width: the interval had to be twice as wide.
    forecasts = rows(np.full(STEPS, 2.0))
    adapted = RecentMisses().adapt(forecasts, QUANTILES)
    lower, median, upper = adapted.T
    assert np.array_equal(upper[:24], np.ones(24))  # a day in: no actual known yet
    window = 28 * 24
    last = STEPS - 1  # the window is full: 672 rows against a week's 168 of prior
    assert upper[last] == pytest.approx(2.0 ** (window / (window + 168)))
    assert lower[last] == pytest.approx(-upper[last])
    assert median[last] == pytest.approx(0.2 * upper[last])  # every quantile moves alike
    assert (np.diff(upper[24 : window + 24]) > 0).all()  # each known miss widens it more
    # Actuals inside the interval narrow it.
    narrowed = RecentMisses().adapt(rows(np.full(STEPS, 0.5)), QUANTILES)
    assert 0.5 < narrowed[last, 2] < 1.0


def test_a_row_reads_no_actual_from_within_its_lead_or_outside_its_window() -> None:
    actual = np.full(STEPS, 2.0)
    base = RecentMisses().adapt(rows(actual), QUANTILES)
    later = actual.copy()
    later[500:] = 0.0  # actuals a row at 523 or before could not have known
    assert np.array_equal(RecentMisses().adapt(rows(later), QUANTILES)[:524], base[:524])
    first = np.full(STEPS, np.nan)
    first[500] = 2.0  # the only known actual: the row a lead later is the first it widens
    widened = RecentMisses().adapt(rows(first), QUANTILES)[:, 2]
    assert np.array_equal(widened[:524], np.ones(524))
    assert widened[524] == pytest.approx(2.0 ** (1 / 169))
    older = actual.copy()
    older[:100] = 0.0  # out of the window of the rows 28 days and a day later
    assert np.array_equal(
        RecentMisses().adapt(rows(older), QUANTILES)[100 + 29 * 24 :], base[100 + 29 * 24 :]
    )


def test_rows_the_model_was_fitted_on_and_other_series_do_not_count() -> None:
    actual = np.full(STEPS, 2.0)
    fitted_until = pd.Timestamp("2024-01-01") + 200 * HOUR
    in_sample = rows(actual, out_of_sample_from=fitted_until)
    adapted = RecentMisses().adapt(in_sample, QUANTILES)
    assert np.array_equal(adapted[: 200 + 24], in_sample.bounds[: 200 + 24])
    assert adapted[200 + 24, 2] > 1.0
    # Two series at the same hours: one misses, the other's actuals fall well inside.
    half = STEPS // 2
    series = np.repeat(["a", "b"], half)
    mixed = actual.copy()
    mixed[half:] = 0.5
    both = RecentMisses().adapt(rows(mixed, series), QUANTILES)
    assert (both[24:half, 2] > 1.0).all()
    assert (both[half + 24 :, 2] < 1.0).all()


def test_window_quantiles_are_each_windows_conformal_quantile() -> None:
    finite = np.random.default_rng(1).permutation(np.arange(20.0))
    values = np.concatenate([finite, [2.0, np.inf, 3.0, np.inf, np.inf]])
    starts = np.array([0, 3, 3, 0, 20, 23])
    counts = np.array([20, 11, 11, 0, 3, 2])
    got = window_quantiles(values, starts, counts, 0.8)
    for i in (0, 1):
        window = values[starts[i] : starts[i] + counts[i]]
        assert got[i] == conformal_quantile(window, 0.8)
    assert got[2] == got[1]
    assert np.isnan(got[3])  # empty
    assert got[4] == 3.0  # the window 2, inf, 3: its largest finite value
    assert got[5] == 1.0  # nothing finite


def test_ratios_and_the_interval_that_sets_the_scale() -> None:
    bounds = np.array([[-1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 1.0]])
    actual = np.array([3.0, 0.0, 1.0, np.nan])
    ratios = miss_ratios(actual, np.zeros(4), bounds, 0, 2)
    assert ratios[:3].tolist() == [1.5, 0.0, np.inf]
    assert np.isnan(ratios[3])
    # Forecasts without error leave the interval as it is, not of no width.
    exact = rows(np.zeros(STEPS))
    assert np.array_equal(RecentMisses().adapt(exact, QUANTILES), exact.bounds)
    assert adapted_interval((0.1, 0.5, 0.9)) == (0, 2, 0.9 - 0.1)
    assert adapted_interval((0.025, 0.1, 0.5, 0.9, 0.975)) == (1, 3, 0.9 - 0.1)
    assert adapted_interval((0.05, 0.95)) == (0, 1, 0.95 - 0.05)
    assert adapted_interval((0.5,)) is None
    rule = RecentMisses(14 * DAY, 2 * DAY)
    assert RecentMisses.from_dict(rule.as_dict()) == rule


def test_only_the_wanted_rows_are_rescaled_and_as_if_all_were() -> None:
    everything = rows(np.full(STEPS, 2.0))
    wanted = np.zeros(STEPS, dtype=bool)
    wanted[-24:] = True  # a day to forecast after a history that only lends its misses
    some = RecentMisses().adapt(replace(everything, wanted=wanted), QUANTILES)
    assert np.array_equal(some[-24:], RecentMisses().adapt(everything, QUANTILES)[-24:])
    assert np.array_equal(some[:-24], everything.bounds[:-24])


def test_a_cadence_the_window_holds_fewer_than_four_steps_of_keeps_the_calibration() -> None:
    """Months: the 28-day window holds one miss at most, which had rescaled the next
    month's interval by itself. Weeks (four in the window) still adapt."""
    misses = np.full(60, 2.0)
    for step, adapts in ((pd.Timedelta(days=31), False), (pd.Timedelta(days=7), True)):
        stamps = pd.date_range("2020-01-01", periods=60, freq=step)
        forecasts = replace(
            rows(misses, out_of_sample_from=stamps[0]),
            timestamps=stamps.to_numpy(),
            step=step,
            lead=step,
        )
        adapted = RecentMisses().adapt(forecasts, QUANTILES)
        assert np.array_equal(adapted, forecasts.bounds) is not adapts
