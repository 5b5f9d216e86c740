"""Conformalized quantiles: calibrated on one part, honest on another; and their scores."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.scoring.intervals import (
    QuantileCalibration,
    Spread,
    calibrate,
    central_intervals,
    paired_quantiles,
    pinball_loss,
    quantile_metrics,
    weighted_quantile_loss,
)


def test_central_intervals_pair_q_with_one_minus_q() -> None:
    assert central_intervals([0.1, 0.5, 0.9]) == [(0, 2, 80)]
    assert central_intervals([0.05, 0.25, 0.5, 0.75, 0.95]) == [(0, 4, 90), (1, 3, 50)]
    assert central_intervals([0.5, 0.9]) == []
    assert paired_quantiles([0.05, 0.25, 0.5, 0.75, 0.95]) == [0.05, 0.25, 0.75, 0.95]


def test_a_too_narrow_interval_is_widened_to_its_nominal_coverage() -> None:
    rng = np.random.default_rng(0)
    point = np.zeros(20_000)
    actual = rng.normal(0, 1, 20_000)
    # Quantile "boosters" that are far too confident: +-0.5 where +-1.28 is right.
    boosted = {0.1: point - 0.5, 0.9: point + 0.5}
    half = 10_000
    calibration = calibrate(
        actual[:half], point[:half], {q: b[:half] for q, b in boosted.items()}, [0.1, 0.5, 0.9]
    )
    assert calibration.widen["0.1"] == pytest.approx(1.28 - 0.5, abs=0.05)
    bounds = calibration.bounds(point[half:], {q: b[half:] for q, b in boosted.items()})
    inside = (actual[half:] >= bounds[:, 0]) & (actual[half:] <= bounds[:, 2])
    assert inside.mean() == pytest.approx(0.8, abs=0.015)
    # The median is the point forecast plus the residuals' median.
    assert bounds[:, 1] == pytest.approx(np.median(actual[:half]), abs=0.01)


def test_a_too_wide_interval_is_narrowed_and_rows_never_cross() -> None:
    rng = np.random.default_rng(1)
    actual = rng.normal(0, 1, 5_000)
    point = np.zeros(5_000)
    boosted = {0.1: point - 3.0, 0.9: point + 3.0}
    calibration = calibrate(actual, point, boosted, [0.1, 0.5, 0.9])
    assert calibration.widen["0.9"] < 0
    bounds = calibration.bounds(point, boosted)
    assert (np.diff(bounds, axis=1) >= 0).all()
    assert QuantileCalibration.from_dict(calibration.as_dict()) == calibration


def _slotted(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose error is 5x larger in slot 1 than in slot 0 (column 1; column 0 is noise)."""
    rng = np.random.default_rng(seed)
    slot = rng.integers(0, 2, rows).astype(float)
    X = np.column_stack([rng.normal(size=rows), slot])
    return X, rng.normal(0, 1 + 4 * slot)


def test_conformal_quantiles_follow_the_spread_of_each_slot() -> None:
    X, residuals = _slotted(20_000, 2)
    point = np.full(len(residuals), 100.0)
    calibration = calibrate(100 + residuals, point, {}, [0.1, 0.5, 0.9], X, [1])
    assert calibration.widen == {}
    factor = calibration.spread.factors[0]
    assert factor.values == (0.0, 1.0)
    assert factor.factors[1] / factor.factors[0] == pytest.approx(5, rel=0.05)
    fresh_X, fresh = _slotted(20_000, 3)
    bounds = calibration.bounds(np.full(len(fresh), 100.0), {}, fresh_X)
    inside = (100 + fresh >= bounds[:, 0]) & (100 + fresh <= bounds[:, 2])
    for slot in (0.0, 1.0):  # pooled residuals would over-cover slot 0, under-cover slot 1
        assert inside[fresh_X[:, 1] == slot].mean() == pytest.approx(0.8, abs=0.02)
    assert (np.diff(bounds, axis=1) >= 0).all()
    assert QuantileCalibration.from_dict(calibration.as_dict()) == calibration


def test_a_value_never_calibrated_gets_the_average_spread() -> None:
    X, residuals = _slotted(2_000, 4)
    spread = Spread.fit(residuals, X, [1])
    unseen = np.array([[0.0, 7.0]])
    assert spread.of(unseen, 1)[0] == pytest.approx(np.mean(np.abs(residuals)))


def test_a_slot_forecast_exactly_gets_an_interval_of_no_width() -> None:
    X, residuals = _slotted(4_000, 5)
    residuals[X[:, 1] == 0] = 0.0  # slot 0: a meter that is off and forecast as off
    calibration = calibrate(residuals, np.zeros(len(residuals)), {}, [0.1, 0.5, 0.9], X, [1])
    bounds = calibration.bounds(np.zeros(len(residuals)), {}, X)
    assert np.isfinite(bounds).all()
    off = X[:, 1] == 0
    assert (bounds[off] == 0).all()
    # The other slot's interval is set by its own scores alone, not diluted by the zeros.
    inside = (residuals[~off] >= bounds[~off, 0]) & (residuals[~off] <= bounds[~off, 2])
    assert inside.mean() == pytest.approx(0.8, abs=0.03)


def test_a_calibration_stored_before_spreads_adds_raw_residual_quantiles() -> None:
    stored = {"quantiles": [0.1, 0.9], "widen": {}, "offsets": {"0.1": -2.0, "0.9": 3.0}}
    calibration = QuantileCalibration.from_dict(stored)
    bounds = calibration.bounds(np.array([10.0]), {}, np.zeros((1, 2)))
    assert bounds.tolist() == [[8.0, 13.0]]


def test_pinball_wql_and_coverage() -> None:
    actual = np.array([10.0, 20.0, 30.0])
    assert pinball_loss(actual, actual, 0.3) == 0
    assert pinball_loss(actual, actual - 1, 0.9) == pytest.approx(0.9)
    assert pinball_loss(actual, actual + 1, 0.9) == pytest.approx(0.1)
    bounds = np.column_stack([actual - 1, actual, actual + 1])
    # WQL: 2 * sum of pinball losses / sum |actual|, averaged over quantiles.
    expected = np.mean([2 * 0.1 * 3 / 60, 0.0, 2 * 0.1 * 3 / 60])
    assert weighted_quantile_loss(actual, bounds, [0.1, 0.5, 0.9]) == pytest.approx(expected)
    metrics = quantile_metrics(actual, bounds, [0.1, 0.5, 0.9])
    assert metrics["coverage_80"] == 1.0
    assert metrics["interval_width_80"] == 2.0
    assert metrics["pinball_p10"] == pytest.approx(0.1)
    shifted = quantile_metrics(actual + 1.5, bounds, [0.1, 0.5, 0.9])
    assert shifted["coverage_80"] == 0.0
