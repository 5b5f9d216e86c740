"""No feature at time t may use a target value later than t - horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import TrainingConfig
from pipeline.features.build import (
    FeatureSpec,
    build_features,
    default_spec,
    feature_names,
    lag_steps,
    naive_lag,
    series_step,
    steps_per_day,
)
from pipeline.features.build import spec_for as spec_of_span
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureFrame, FeatureStore


def spec_for(frame: FeatureFrame, horizon: int = 24, holidays: str | None = None) -> FeatureSpec:
    """The features a default job with ``horizon`` and ``holidays`` gets from ``frame``."""
    config = TrainingConfig(
        feature_set="s", target_variable="load_kw", horizon=horizon, holidays=holidays
    )
    return default_spec(frame, config)


def frame_of(store: FeatureStore, table: pd.DataFrame, series: str | None = None) -> FeatureFrame:
    store.put(
        "s", table, timestamp_column="timestamp", target_column="load_kw", series_column=series
    )
    return store.load("s")


@pytest.mark.parametrize(
    ("horizon", "days", "yearly"),
    [
        (1, 60, False),
        (6, 60, False),
        (24, 60, False),
        (36, 60, False),
        (168, 60, False),
        (24, 420, True),
    ],
)
def test_no_feature_sees_targets_newer_than_the_horizon(
    store: FeatureStore, horizon: int, days: int, yearly: bool
) -> None:
    table = load_series(seed=3, hours=24 * days)
    spec = FeatureSpec(horizon, 24, holidays="FR", yearly=yearly)
    original = build_features(frame_of(store, table), spec)
    cut = table["timestamp"].iloc[24 * (days - 20)]
    # Scramble every target value after (cut - horizon): features up to ``cut`` must not move.
    tampered = table.copy()
    later = tampered["timestamp"] > cut - pd.Timedelta(hours=horizon)
    tampered.loc[later, "load_kw"] = np.random.default_rng(0).normal(0, 1e6, later.sum())
    changed = build_features(frame_of(store, tampered), spec)

    upto = (original.timestamps <= cut).to_numpy()
    assert upto.sum() > 24 * 10
    pd.testing.assert_frame_equal(
        original.features[upto].reset_index(drop=True),
        changed.features[upto].reset_index(drop=True),
    )
    np.testing.assert_array_equal(original.seasonal_naive[upto], changed.seasonal_naive[upto])
    # ... and the scrambling is visible right after, so the check can fail.
    after = (
        (original.timestamps > cut) & (original.timestamps <= cut + pd.Timedelta(hours=1))
    ).to_numpy()
    lag_columns = [c for c in original.features.columns if c.startswith("lag_")]
    assert not original.features[after][lag_columns].equals(changed.features[after][lag_columns])


def test_lags_are_at_least_the_horizon() -> None:
    assert lag_steps(1, 24) == [1, 2, 3, 24, 48, 168]
    assert lag_steps(30, 24) == [30, 31, 32, 48, 168]
    assert all(k >= 200 for k in lag_steps(200, 24))
    assert naive_lag(24, 24) == 24
    assert naive_lag(30, 24) == 48


def test_series_are_featurised_independently(store: FeatureStore) -> None:
    north = load_series(seed=1, hours=24 * 20).assign(meter="north")
    south = load_series(seed=2, hours=24 * 20).assign(meter="south")
    south["load_kw"] += 10_000
    matrix = build_features(
        frame_of(store, pd.concat([north, south]), "meter"), FeatureSpec(24, 24)
    )
    assert matrix.series is not None
    is_north = matrix.series.eq("north").to_numpy()
    assert matrix.features.loc[is_north, "lag_24"].max() < 5_000
    assert matrix.features.loc[~is_north, "lag_24"].min() > 5_000
    assert matrix.season == 24


def test_date_range_selects_rows_but_history_feeds_lags(store: FeatureStore) -> None:
    frame = frame_of(store, load_series(seed=4, hours=24 * 30))
    start = pd.Timestamp("2024-01-10", tz="UTC")
    end = pd.Timestamp("2024-01-20", tz="UTC")
    matrix = build_features(frame, FeatureSpec(24, 24), start.to_pydatetime(), end.to_pydatetime())
    assert matrix.timestamps.min() == start
    assert matrix.timestamps.max() == end - pd.Timedelta(hours=1)
    assert len(matrix.target) == 24 * 10


def test_the_step_is_each_series_own_spacing(store: FeatureStore) -> None:
    quarter = (
        half_hourly(days=3)
        .iloc[::2]
        .assign(
            timestamp=lambda t: pd.date_range("2025-01-01", periods=len(t), freq="15min", tz="UTC")
        )
    )
    assert series_step(frame_of(store, quarter)) == 900
    assert steps_per_day(900) == 96
    # Two hourly meters reading half an hour apart are hourly, not half-hourly.
    early = load_series(seed=1, hours=24 * 10).assign(meter="early")
    late = load_series(seed=2, hours=24 * 10).assign(meter="late")
    late["timestamp"] += pd.Timedelta(minutes=30)
    frame = frame_of(store, pd.concat([early, late]), "meter")
    assert series_step(frame) == 3600
    assert spec_for(frame).season == 24


def test_weekly_data_lags_whole_weeks(store: FeatureStore) -> None:
    """Coarser than daily: the grid is the data's own week, so a 4-step horizon reads
    values at least four weeks old (a daily grid would have read one a week old)."""
    weeks = pd.date_range("2020-01-06", periods=200, freq="7D", tz="UTC")
    table = pd.DataFrame({"timestamp": weeks, "load_kw": np.arange(200.0)})
    frame = frame_of(store, table)
    spec = spec_for(frame, horizon=4)
    assert (spec.season, spec.step) == (1, pd.Timedelta(days=7))
    matrix = build_features(frame, spec)
    lags = [c for c in matrix.features.columns if c.startswith("lag_")]
    assert min(int(c.removeprefix("lag_")) for c in lags) == 4
    np.testing.assert_array_equal(matrix.features["lag_4"], matrix.target - 4)


def half_hourly(days: int, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2025-03-01", periods=48 * days, freq="30min", tz="UTC")
    load = 10 + np.sin(np.arange(len(stamps)) * 2 * np.pi / 48) + rng.normal(0, 0.1, len(stamps))
    return pd.DataFrame({"timestamp": stamps, "load_kw": load})


def test_time_of_day_counts_the_datas_own_steps(store: FeatureStore) -> None:
    frame = frame_of(store, half_hourly(days=10))
    matrix = build_features(frame, spec_for(frame, 48))
    slots = matrix.features["time_of_day"]
    assert sorted(slots.unique()) == list(range(48))
    at_half_past_one = matrix.timestamps.dt.strftime("%H:%M") == "01:30"
    assert set(slots[at_half_past_one.to_numpy()]) == {3}


def test_missing_values_cost_features_not_rows(store: FeatureStore) -> None:
    table = half_hourly(days=20)
    table.loc[48 * 12 : 48 * 12 + 5, "load_kw"] = np.nan  # a three-hour outage
    frame = frame_of(store, table)
    matrix = build_features(frame, FeatureSpec(48, 48))
    # Only the outage's own rows go (they have no target); the week after keeps its rows
    # and its lags read the outage as missing.
    assert len(matrix.target) == len(table) - 48 * 7 - 6
    assert matrix.features["lag_48"].isna().sum() == 6
    assert np.isfinite(matrix.features["roll_mean_336"]).all()


def test_a_missing_timestamp_never_shifts_a_lag(store: FeatureStore) -> None:
    table = half_hourly(days=20)
    gapped = table.drop(index=range(48 * 12, 48 * 12 + 4))  # two hours not reported at all
    matrix = build_features(frame_of(store, gapped), FeatureSpec(48, 48))
    reference = build_features(frame_of(store, table), FeatureSpec(48, 48))
    kept = reference.timestamps.isin(matrix.timestamps).to_numpy()
    lagged = reference.features.loc[kept, "lag_48"].to_numpy()
    got = matrix.features["lag_48"].to_numpy()
    # Each lag is the value one day earlier, or missing where that time was not reported.
    gap = np.isnan(got)
    assert gap.sum() == 4
    np.testing.assert_array_equal(got[~gap], lagged[~gap])


def test_lags_are_counted_in_time_for_series_off_the_grid(store: FeatureStore) -> None:
    """A reading a second late, then twelve hours not reported: every lag is the value a
    whole number of days before its row, as its name says (counted by rows, a series off
    the grid had read values 36 hours old for lag_48)."""
    table = half_hourly(days=20)
    late = 48 * 10 + 40  # 20:00 on day 10
    stamps = table["timestamp"].copy()
    stamps.iloc[late] += pd.Timedelta(seconds=1)
    table["timestamp"] = stamps
    table = table.drop(index=range(late + 1, late + 25))
    matrix = build_features(frame_of(store, table), FeatureSpec(48, 48))
    by_time = table.set_index("timestamp")["load_kw"]
    lagged = matrix.timestamps.dt.floor("30min") - pd.Timedelta(days=1)
    expected = by_time.rename(lambda t: t.floor("30min")).reindex(lagged).to_numpy()
    got = matrix.features["lag_48"].to_numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(got[~np.isnan(got)], expected[~np.isnan(expected)])
    assert matrix.timestamps.isin([table.loc[late, "timestamp"]]).any(), "kept, as it was"


def test_a_series_finer_than_the_set_reads_nothing_newer_than_the_horizon(
    store: FeatureStore,
) -> None:
    """An hourly set with one quarter-hourly meter: its rows take the hourly grid (one per
    hour), so its day-old lag is a day old, not six hours."""
    hourly = [load_series(seed=n, hours=24 * 20).assign(meter=f"m{n}") for n in range(3)]
    fine = load_series(seed=9, hours=24 * 20).assign(meter="fine")
    fine["timestamp"] = pd.date_range(fine["timestamp"].iloc[0], periods=len(fine), freq="15min")
    frame = frame_of(store, pd.concat([*hourly, fine]), "meter")
    matrix = build_features(frame, spec_for(frame, horizon=24))
    assert matrix.series is not None
    of_fine = (matrix.series == "fine").to_numpy()
    stamps = matrix.timestamps[of_fine].reset_index(drop=True)
    assert len(stamps) < len(fine) / 3, "about one row an hour"
    read_at = pd.Series(fine["timestamp"].to_numpy(), index=fine["load_kw"].to_numpy())
    got = matrix.features.loc[of_fine, "lag_24"].reset_index(drop=True)
    known = got.notna()
    assert known.sum() > 24
    ages = stamps[known].to_numpy() - read_at.loc[got[known].to_numpy()].to_numpy()
    off_a_day = abs(pd.to_timedelta(ages) - pd.Timedelta(hours=24))
    assert (off_a_day <= pd.Timedelta(minutes=15)).all(), ages


def test_rows_half_a_step_off_the_first_keep_their_places(store: FeatureStore) -> None:
    """The first reading at 10:30, the rest on the hour: rounded half to even, every other
    row had shared a step with the next and been left out."""
    table = load_series(seed=3, hours=24 * 20)
    stamps = table["timestamp"].copy()
    stamps.iloc[0] -= pd.Timedelta(minutes=30)
    table["timestamp"] = stamps
    frame = frame_of(store, table)
    spec = spec_for(frame, horizon=24)
    assert len(build_features(frame, spec, require_target=False).target) >= len(table) - 200


def test_monthly_series_keep_every_month(store: FeatureStore) -> None:
    """Months are 28 to 31 days: on a grid of the median 31, twelve years of month starts
    drift a step off it, and placed by time some months would have shared a step."""
    months = pd.date_range("2012-01-01", periods=150, freq="MS", tz="UTC")
    table = pd.DataFrame({"timestamp": months, "load_kw": np.arange(150.0)})
    frame = frame_of(store, table)
    spec = spec_for(frame, horizon=3)
    matrix = build_features(frame, spec)
    assert len(matrix.target) == 150 - spec.warm_up
    np.testing.assert_array_equal(matrix.features["lag_3"], matrix.target - 3)


def test_holidays_and_last_year(store: FeatureStore) -> None:
    frame = frame_of(store, load_series(seed=6, hours=24 * 700))
    spec = spec_for(frame, 24, "FR")
    assert spec.yearly
    matrix = build_features(frame, spec)
    day = matrix.timestamps.dt.strftime("%m-%d")
    holiday = matrix.features["is_holiday"].to_numpy() == 1
    assert set(day[holiday]) >= {"07-14", "12-25", "01-01"}
    assert not set(day[~holiday]) & {"07-14", "12-25"}
    # Last year's value is the target a calendar year earlier, where the set reaches back.
    target = pd.Series(frame.data["load_kw"].to_numpy(), index=frame.data["timestamp"])
    row = int(np.flatnonzero(matrix.timestamps == pd.Timestamp("2025-03-10 08:00", tz="UTC"))[0])
    assert (
        matrix.features["last_year"].iloc[row] == target[pd.Timestamp("2024-03-10 08:00", tz="UTC")]
    )
    assert matrix.features["last_year"].iloc[: 24 * 300].isna().all()


def test_a_multi_series_set_names_each_series_as_a_category(store: FeatureStore) -> None:
    north = load_series(seed=1, hours=24 * 30).assign(meter="north")
    south = load_series(seed=2, hours=24 * 30).assign(meter="south")
    frame = frame_of(store, pd.concat([north, south]), "meter")
    spec = spec_for(frame)
    assert spec.series == ("north", "south")
    matrix = build_features(frame, spec)
    assert matrix.series is not None
    codes = matrix.features["series_id"].to_numpy()
    np.testing.assert_array_equal(codes, (matrix.series == "south").to_numpy().astype(float))
    # A series the model never saw is a missing category, not another meter's.
    stranger = frame_of(store, load_series(seed=3, hours=24 * 30).assign(meter="east"), "meter")
    assert build_features(stranger, spec).features["series_id"].isna().all()


def test_the_scaler_leaves_series_codes_as_they_are(store: FeatureStore) -> None:
    from pipeline.config import TrainingConfig
    from pipeline.features.preprocess import preprocess

    meters = [load_series(seed=i, hours=24 * 40).assign(meter=f"m{i}") for i in range(3)]
    frame = frame_of(store, pd.concat(meters), "meter")
    config = TrainingConfig(feature_set="s", target_variable="load_kw")
    data = preprocess(frame, config)
    column = data.feature_names.index("series_id")
    assert data.categorical == ["series_id"]
    assert set(np.unique(data.train.X[:, column])) == {0.0, 1.0, 2.0}
    assert set(np.unique(data.test.X[:, column])) == {0.0, 1.0, 2.0}


def test_a_short_training_part_reads_no_week_old_values() -> None:
    config = TrainingConfig(feature_set="s", target_variable="y", horizon=1)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    five_minutes = 300.0
    short = spec_of_span(five_minutes, start, start + pd.Timedelta(days=12), None, config)
    long = spec_of_span(five_minutes, start, start + pd.Timedelta(days=60), None, config)
    assert (short.weekly, long.weekly) == (False, True)
    assert max(lag_steps(1, 288, short.weekly)) == 2 * 288
    assert feature_names(short, []) == [
        n
        for n in feature_names(long, [])
        if n not in {"lag_2016", "roll_mean_2016", "roll_std_2016"}
    ]
    # Models registered before the choice read last week's values, as they were trained.
    assert FeatureSpec.from_dict({"horizon": 1, "season": 24}).weekly
