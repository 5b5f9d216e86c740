"""Seasonal lags, windows and calendar features follow the data's cadence."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from pipeline.config import TrainingConfig
from pipeline.features.build import (
    CALENDAR_FEATURES,
    FeatureSpec,
    build_features,
    feature_names,
    lag_steps,
    spec_for,
)
from pipeline.features.seasons import DAILY_CALENDAR
from pipeline.store.feature_store import FeatureFrame, FeatureStore
from pipeline.versions.column_types import is_feature_column

START = pd.Timestamp("2020-01-06", tz="UTC")
DAY = 86_400.0


def spec_of(step_seconds: float, span: pd.Timedelta, horizon: int) -> FeatureSpec:
    config = TrainingConfig(feature_set="s", target_variable="y", horizon=horizon)
    return spec_for(step_seconds, START, START + span, None, config)


def test_daily_data_reads_the_same_weekday_one_to_four_weeks_and_a_year_back() -> None:
    week_ahead = spec_of(DAY, pd.Timedelta(days=3 * 365), horizon=7)
    assert week_ahead.target_lags == [7, 8, 9, 14, 21, 28]
    assert week_ahead.window_lengths == [7, 28]
    assert week_ahead.year_lag == 364
    assert week_ahead.calendar_features == DAILY_CALENDAR  # no time of day: it is constant
    day_ahead = spec_of(DAY, pd.Timedelta(days=3 * 365), horizon=1)
    assert day_ahead.target_lags == [1, 2, 3, 7, 14, 21, 28]
    # Too short for a year-old value: none is read.
    assert spec_of(DAY, pd.Timedelta(days=200), horizon=7).year_lag is None


def test_ten_minute_data_echoes_a_day_and_a_week() -> None:
    spec = spec_of(600.0, pd.Timedelta(days=120), horizon=144)
    assert spec.target_lags == [144, 145, 146, 288, 1008]
    assert spec.window_lengths == [144, 1008]
    assert spec.calendar_features == CALENDAR_FEATURES
    assert spec.year_lag is None


def test_weekly_data_reads_the_same_week_a_year_back() -> None:
    spec = spec_of(7 * DAY, pd.Timedelta(weeks=52 * 4), horizon=4)
    assert spec.target_lags == [4, 5, 6]
    assert spec.year_lag == 52
    assert not spec.yearly  # last year's date is rarely on a weekly grid
    assert spec.calendar_features == ("month", "day_of_year")
    assert spec.window_lengths == [4, 13]


@pytest.mark.parametrize(
    ("step_seconds", "horizons"),
    [(30 * DAY, range(1, 40)), (91 * DAY, range(1, 14)), (7 * DAY, range(48, 106))],
)
def test_a_year_ahead_reads_the_year_old_value_once(step_seconds: float, horizons: range) -> None:
    """A monthly model forecasting a year ahead had read lag_12 twice (a recent lag and
    the year-old one), and LightGBM refused to train it."""
    for horizon in horizons:
        spec = spec_of(step_seconds, pd.Timedelta(days=20 * 365), horizon)
        names = feature_names(spec, [])
        assert len(names) == len(set(names)), (horizon, names)
        assert spec.year_lag is None or spec.year_lag not in spec.target_lags


def test_sub_daily_models_keep_the_lags_they_had() -> None:
    for horizon in (1, 24, 30):
        spec = spec_of(3600.0, pd.Timedelta(days=365), horizon=horizon)
        assert spec.target_lags == lag_steps(horizon, 24)


def test_a_stored_spec_reads_back_and_an_old_one_keeps_its_features() -> None:
    spec = spec_of(DAY, pd.Timedelta(days=3 * 365), horizon=7)
    assert FeatureSpec.from_dict(asdict(spec)) == spec
    old = FeatureSpec.from_dict({"horizon": 7, "season": 1})
    assert old.target_lags == lag_steps(7, 1) == [7, 8, 9]
    assert old.calendar_features == CALENDAR_FEATURES
    assert "time_of_day" in feature_names(old, [])
    assert "lag_364" not in feature_names(old, [])


def daily_frame(
    store: FeatureStore, days: int, step_days: int = 1, start: pd.Timestamp = START
) -> tuple[pd.DataFrame, FeatureFrame]:
    stamps = pd.date_range(start, periods=days, freq=f"{step_days}D")
    rng = np.random.default_rng(7)
    table = pd.DataFrame({"timestamp": stamps, "y": rng.normal(100, 10, days)})
    store.put("s", table, timestamp_column="timestamp", target_column="y")
    return table, store.load("s")


@pytest.mark.parametrize(("step_days", "horizon"), [(1, 1), (1, 7), (2, 200), (3, 150)])
def test_no_daily_feature_sees_a_target_newer_than_the_horizon(
    store: FeatureStore, step_days: int, horizon: int
) -> None:
    """Steps of days far ahead (2-day steps 200 ahead: 400 days): last year's value, a
    calendar year back, had been newer than the horizon. It lies on a 2-day grid when a
    leap day is in the year before: the rows before the cut (2024-11) have one."""
    rows = 3 * 365 // step_days
    table, frame = daily_frame(store, rows, step_days, pd.Timestamp("2022-01-06", tz="UTC"))
    spec = spec_of(DAY * step_days, pd.Timedelta(days=(rows - 1) * step_days), horizon)
    original = build_features(frame, spec)
    cut = table["timestamp"].iloc[rows - 60 // step_days]
    tampered = table.copy()
    later = tampered["timestamp"] > cut - pd.Timedelta(days=horizon * step_days)
    tampered.loc[later, "y"] = -1e6
    store.put("s", tampered, timestamp_column="timestamp", target_column="y")
    changed = build_features(store.load("s"), spec)
    upto = original.timestamps <= cut
    pd.testing.assert_frame_equal(original.features[upto], changed.features[upto.to_numpy()])
    # After the cut the scrambled values do show: the test can see a leak.
    assert not original.features[~upto].equals(changed.features[(~upto).to_numpy()])


def test_the_year_old_lag_costs_no_warm_up(store: FeatureStore) -> None:
    days = 3 * 365
    table, frame = daily_frame(store, days)
    spec = spec_of(DAY, pd.Timedelta(days=days - 1), horizon=7)
    matrix = build_features(frame, spec)
    assert matrix.timestamps.iloc[0] == table["timestamp"].iloc[spec.warm_up]
    year_old = matrix.features["lag_364"].to_numpy()
    assert np.isnan(year_old[: 364 - spec.warm_up]).all()
    np.testing.assert_allclose(year_old[364 - spec.warm_up :], table["y"].to_numpy()[: days - 364])
    np.testing.assert_allclose(
        matrix.features["lag_14"].to_numpy(), table["y"].to_numpy()[spec.warm_up - 14 : -14]
    )


def test_every_name_the_feature_builder_gives_is_refused_as_a_covariate() -> None:
    """Uploads refuse covariates of these names (``is_feature_column``): a second column
    of one name in every job."""
    for step, horizon, span in ((3600.0, 24, 800), (86_400.0, 7, 900), (7 * 86_400.0, 4, 2000)):
        config = TrainingConfig(
            feature_set="s", target_variable="y", horizon=horizon, holidays="US"
        )
        spec = spec_for(step, START, START + pd.Timedelta(days=span), ("a", "b"), config)
        for name in feature_names(spec, []):
            assert is_feature_column(name), name
    assert not is_feature_column("roll_mean")
    assert not is_feature_column("temperature")
