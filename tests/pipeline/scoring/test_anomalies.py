"""Calibrated anomaly scores: the false-alarm rate a user states is the rate out of sample,
also when the residuals' scale moves after calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.scoring.anomalies import (
    AnomalyCalibration,
    calibrate,
    cluster_peaks,
    default_alarms_per_week,
    step_counts,
    trailing_scale,
)
from pipeline.scoring.detector import AnomalyDetector

FIVE_MINUTES = pd.Timedelta(minutes=5)
STEPS_PER_DAY = 288
WEEK_ROWS = 7 * STEPS_PER_DAY


def alarms(calibration: AnomalyCalibration, residuals: np.ndarray) -> np.ndarray:
    """The detector's alarms on these residuals (rows 5 minutes apart)."""
    detector = AnomalyDetector(calibration, calibration.threshold, gap=1, suppress=0)
    stamps = pd.date_range("2024-01-01", periods=len(residuals), freq="5min", tz="UTC")
    return detector.detect(residuals, np.zeros(len(residuals)), stamps).alarms


def heavy_tailed(rng: np.random.Generator, rows: int, scale: float = 1.0) -> np.ndarray:
    return scale * rng.standard_t(df=4, size=rows)


def test_the_alarm_rate_out_of_sample_is_the_stated_one() -> None:
    rng = np.random.default_rng(0)
    validation = heavy_tailed(rng, 4 * WEEK_ROWS)
    calibration = calibrate(validation, None, FIVE_MINUTES, STEPS_PER_DAY, alarms_per_week=2)
    weeks = 100
    later = heavy_tailed(rng, weeks * WEEK_ROWS)
    raised = alarms(calibration, later).sum()
    # 2 a week; a plain z of 4 on the same residuals raises about 25 a week.
    assert 1.0 <= raised / weeks <= 3.5
    plain_z = np.abs(later) / (1.4826 * np.median(np.abs(validation)))
    assert (plain_z > 4).sum() / weeks > 10


@pytest.mark.parametrize(
    ("step", "stated", "rows_flagged"),
    [
        (pd.Timedelta(hours=1), 0.5, 0.5 / 168),  # half a week's alarm is the rarer
        (pd.Timedelta(days=1), 0.07, 0.01),  # 0.5 a week would be a day in 14
        (pd.Timedelta(weeks=1), 0.01, 0.01),  # ... and every other week
    ],
)
def test_an_unstated_alarm_rate_flags_at_most_one_row_in_a_hundred(
    step: pd.Timedelta, stated: float, rows_flagged: float
) -> None:
    assert default_alarms_per_week(step) == pytest.approx(stated)
    rng = np.random.default_rng(3)
    calibration = calibrate(rng.normal(size=3000), None, step, 1, alarms_per_week=None)
    assert calibration.alarms_per_week == pytest.approx(stated)
    assert calibration.threshold == pytest.approx(stats.norm.isf(rows_flagged / 2))
    # A stated rate is the one used, however coarse the cadence.
    daily = calibrate(rng.normal(size=3000), None, pd.Timedelta(days=1), 1, alarms_per_week=0.5)
    assert daily.threshold == pytest.approx(stats.norm.isf(0.5 / 7 / 2))


def test_scores_follow_a_wider_residual_scale() -> None:
    rng = np.random.default_rng(1)
    validation = heavy_tailed(rng, 2 * WEEK_ROWS)
    calibration = calibrate(validation, None, FIVE_MINUTES, STEPS_PER_DAY, alarms_per_week=1)
    weeks = 20
    wider = heavy_tailed(rng, weeks * WEEK_ROWS, scale=3.0)
    raised = alarms(calibration, wider)
    # After the first week the trailing scale has followed the residuals up.
    assert raised[WEEK_ROWS:].sum() / (weeks - 1) <= 3
    # A spike twenty times the new scale still raises an alarm.
    wider[-1] = 60.0
    assert alarms(calibration, wider)[-1]


def test_the_threshold_is_the_normal_deviate_of_the_alarm_rate() -> None:
    rng = np.random.default_rng(2)
    calibration = calibrate(
        rng.normal(size=3000), None, pd.Timedelta(hours=1), 24, alarms_per_week=0.5
    )
    assert calibration.threshold == pytest.approx(stats.norm.isf(0.5 / 168 / 2))
    # A typical residual scores near 0; scores grow with the residual.
    scores = calibration.scores(np.array([0.0, 1.0, 3.0, 6.0]))
    assert scores[0] < 0.2
    assert np.all(np.diff(scores) > 0)


def test_each_series_has_its_own_trailing_scale_and_future_rows_score_nan() -> None:
    residuals = np.array([1.0, 10.0] * 40 + [np.nan, np.nan])
    series = np.array(["quiet", "loud"] * 41)
    scale = trailing_scale(residuals, 0.0, 5.0, window=28, series=series)
    assert scale[-2] == pytest.approx(2.5)  # the floor: half the calibration's scale
    assert scale[-1] == pytest.approx(10 * 1.4826)
    rng = np.random.default_rng(3)
    calibration = calibrate(rng.normal(size=500), None, pd.Timedelta(hours=1), 24, 1.0)
    assert np.isnan(calibration.scores(residuals, series)[-2:]).all()


def test_in_sample_residuals_are_left_out_of_the_scale() -> None:
    residuals = np.concatenate([np.full(50, 0.01), np.full(50, 1.0)])
    in_sample = np.arange(100) < 50
    ignoring = trailing_scale(residuals, 0.0, 1.0, window=28, in_sample=in_sample)
    reading = trailing_scale(residuals, 0.0, 1.0, window=28)
    assert ignoring[50] == pytest.approx(1.0)  # no out-of-sample history: the calibration's
    assert reading[50] == pytest.approx(0.5)  # the in-sample ones would pull it to the floor


def test_a_series_without_trailing_residuals_is_read_at_its_own_scale() -> None:
    """A large meter beside a small one: its first rows, and rows the model was fitted on,
    are measured against its own validation scale, not both meters' together."""
    rng = np.random.default_rng(0)
    hours = 24 * 30
    stamps = pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC").repeat(2)
    series = np.tile(["small", "large"], hours)
    residuals = rng.normal(size=2 * hours) * np.where(series == "large", 50.0, 1.0)
    step = pd.Timedelta(hours=1)
    calibration = calibrate(residuals, series, step, 24, None, gap=3, timestamps=stamps.to_numpy())
    assert calibration.series_scales is not None
    assert calibration.series_scales["large"] == pytest.approx(50, rel=0.1)
    assert calibration.series_scales["small"] == pytest.approx(1, rel=0.1)
    detector = AnomalyDetector(calibration, calibration.threshold, gap=3, suppress=24)
    first_day = np.repeat(np.arange(hours) < 24, 2)
    fresh = rng.normal(size=2 * hours) * np.where(series == "large", 50.0, 1.0)
    served = detector.detect(fresh, np.zeros(2 * hours), stamps, series, step=step)
    assert not served.alarms[first_day].any()  # before any trailing scale exists
    fitted = np.repeat(np.arange(hours) < 24 * 20, 2)
    in_sample = detector.detect(
        0.6 * fresh, np.zeros(2 * hours), stamps, series, in_sample=fitted, step=step
    )
    assert in_sample.alarms[fitted].mean() < 0.01
    stored = AnomalyCalibration.from_dict(calibration.to_dict())
    assert stored == calibration
    legacy = calibration.to_dict()
    del legacy["series_scales"]  # models registered before: the pooled scale
    assert AnomalyCalibration.from_dict(legacy).series_scales is None


def test_a_small_series_beside_biased_large_ones_is_measured_from_its_own_center() -> None:
    """Five large series whose residuals sit 1 above 0, one small one at 0 with a tenth
    of their noise: a spike of 1 on the small one (20 of its sigmas) had scored about 0.2
    against the pooled center, under any threshold; measured from its own it alarms."""
    rng = np.random.default_rng(4)
    hours = 24 * 28
    names = [f"large{i}" for i in range(5)] + ["small"]
    stamps = pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC").repeat(len(names))
    series = np.tile(names, hours)
    small = series == "small"
    residuals = np.where(small, 0.05, 1.0) * rng.normal(size=len(series)) + np.where(small, 0, 1)
    step = pd.Timedelta(hours=1)
    calibration = calibrate(residuals, series, step, 24, None, gap=3, timestamps=stamps.to_numpy())
    assert calibration.series_centers is not None
    assert calibration.series_centers["small"] == pytest.approx(0, abs=0.01)
    assert calibration.series_centers["large0"] == pytest.approx(1, abs=0.2)
    assert calibration.series_scales is not None
    assert calibration.series_scales["small"] == pytest.approx(0.05, rel=0.15)

    fresh = np.where(small, 0.05, 1.0) * rng.normal(size=len(series)) + np.where(small, 0, 1)
    spike = np.flatnonzero(small)[-24]
    fresh[spike] += 1.0
    scores = calibration.scores(fresh, series)
    assert scores[spike] > calibration.threshold
    assert (scores[~small] > calibration.threshold).mean() < 0.01
    legacy = calibration.to_dict()
    del legacy["series_centers"]  # models registered before: the pooled center
    assert AnomalyCalibration.from_dict(legacy).series_centers is None


def test_tied_residuals_alarm_at_the_stated_rate() -> None:
    """A target in whole units ties its residuals: well under the bulk's upper 5 % of rows
    lie strictly past it, and the tail's share must count the rows that do."""
    rng = np.random.default_rng(1)
    step = pd.Timedelta(hours=1)
    validation = np.round(rng.standard_t(5, 24 * 90))
    calibration = calibrate(validation, None, step, 24, alarms_per_week=2.0)
    weeks = 200
    fresh = np.round(rng.standard_t(5, 24 * 7 * weeks))
    stamps = pd.date_range("2024-01-01", periods=len(fresh), freq="h", tz="UTC")
    detector = AnomalyDetector(calibration, calibration.threshold, gap=3, suppress=24)
    events = detector.detect(fresh, np.zeros(len(fresh)), stamps, step=step).events.events
    assert 1.0 <= len(events) / weeks <= 4.0  # 0.42 a week when the tail assumed 5 %


def test_an_anomaly_in_a_short_validation_part_does_not_set_the_tail() -> None:
    """A week of hourly residuals (8 exceedances of the bulk) with a three-hour incident
    in it: the exponential tail's scale is read from their median, so the incident does not
    mute a spike later (their mean reads a scale over 100 times the clean part's)."""
    rng = np.random.default_rng(5)
    validation = rng.normal(size=24 * 7)
    validation[100:103] = 40.0
    calibration = calibrate(validation, None, pd.Timedelta(hours=1), 24, alarms_per_week=0.5)
    clean = calibrate(validation[:100], None, pd.Timedelta(hours=1), 24, alarms_per_week=0.5)
    assert calibration.tail_scale < 2 * clean.tail_scale
    later = rng.normal(size=24 * 14)
    later[-1] = 12.0
    assert alarms(calibration, later)[-1]


def test_an_incident_in_a_long_validation_part_is_one_peak_of_the_tail() -> None:
    """Four weeks of 5-minute residuals (hundreds of exceedances: the generalized Pareto
    tail) with a day-long incident in them: its 288 exceedances are one cluster, so one
    peak of the fit, and scores stay those of the clean part's calibration. Fitted on
    every exceedance, the incident made most of the tail: a residual of 40 scored 2.5
    against a threshold of 3.7, and no alarm was raised in 100 weeks."""
    rng = np.random.default_rng(6)
    validation = heavy_tailed(rng, 4 * WEEK_ROWS)
    clean = calibrate(validation, None, FIVE_MINUTES, STEPS_PER_DAY, alarms_per_week=0.5)
    validation[WEEK_ROWS : WEEK_ROWS + STEPS_PER_DAY] += 30.0
    calibration = calibrate(validation, None, FIVE_MINUTES, STEPS_PER_DAY, alarms_per_week=0.5)
    spikes = np.array([20.0, 30.0, 40.0])
    scores = calibration.score_ratios(spikes / calibration.scale)
    assert np.all(scores > calibration.threshold)
    np.testing.assert_allclose(scores, clean.score_ratios(spikes / clean.scale), rtol=0.1)
    weeks = 50
    later = heavy_tailed(rng, weeks * WEEK_ROWS)
    raised = alarms(calibration, later).sum() / weeks
    assert 0.1 <= raised <= 1.0
    assert raised >= 0.5 * alarms(clean, later).sum() / weeks


def test_clusters_of_exceedances_peak_once_per_series() -> None:
    ratios = np.array([0.0, 5.0, 6.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0, 9.0, np.nan])
    assert list(cluster_peaks(ratios, 1.0, None, gap=3)) == [7.0, 9.0]
    assert list(cluster_peaks(ratios, 1.0, None, gap=1)) == [6.0, 7.0, 9.0]
    # Two series' rows interleaved in time: each series' steps are its own rows.
    series = np.array(["a", "b"] * 6)
    assert sorted(cluster_peaks(ratios, 1.0, series, gap=1)) == [5.0, 6.0, 7.0, 9.0]
    assert len(cluster_peaks(np.zeros(5), 1.0, None, gap=3)) == 0
    # A day missing after row 2 (hourly rows): rows 2 and 5 are 27 steps apart, and the
    # peak of 7 is a cluster of its own.
    stamps = pd.date_range("2024-01-01", periods=12, freq="h").to_numpy().copy()
    stamps[3:] += np.timedelta64(1, "D")
    positions = step_counts(stamps, pd.Timedelta(hours=1), None)
    assert positions[1:6].tolist() == [1, 2, 27, 28, 29]
    assert list(cluster_peaks(ratios, 1.0, None, 3, positions)) == [6.0, 7.0, 9.0]


def test_a_calibration_stored_before_clusters_were_counted_loads_as_it_scored() -> None:
    rng = np.random.default_rng(7)
    calibration = calibrate(heavy_tailed(rng, WEEK_ROWS), None, FIVE_MINUTES, STEPS_PER_DAY, 1.0)
    assert AnomalyCalibration.from_dict(calibration.to_dict()) == calibration
    stored = calibration.to_dict()
    del stored["tail_mass"]  # models registered before it: every exceedance, 5 % of rows
    old = AnomalyCalibration.from_dict(stored)
    assert old.tail_mass == pytest.approx(0.05)
    assert calibration.tail_mass < 0.05  # some exceedances of these rows cluster
    # Past the bulk, only the tail's mass differs.
    far = np.array([calibration.bulk[-1] + 1.0])
    ratio = old.tail_probability(far) / calibration.tail_probability(far)
    assert ratio[0] == pytest.approx(0.05 / calibration.tail_mass)
