"""Two models' forecasts of the same rows, scored per UTC day and over the period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.scoring.intervals import weighted_quantile_loss
from pipeline.scoring.same_rows import Forecasts, common_quantiles, missing_for, same_rows_scores

#: Two days and six hours of hourly rows: three windows, the last a partial day.
STAMPS = pd.date_range("2025-04-01", periods=54, freq="h").to_numpy()
ACTUAL = np.full(54, 10.0)


def test_mae_per_day_and_over_the_period() -> None:
    ours = Forecasts(ACTUAL + np.where(np.arange(54) < 24, 1.0, 3.0))
    theirs = Forecasts(ACTUAL - 2.0)
    scores = same_rows_scores("mae", ACTUAL, STAMPS, ours, theirs)
    assert scores.labels == ["2025-04-01", "2025-04-02", "2025-04-03"]
    assert scores.challenger_windows == [1.0, 3.0, 3.0]
    assert scores.champion_windows == [2.0, 2.0, 2.0]
    assert scores.challenger == pytest.approx((24 * 1 + 30 * 3) / 54)  # by rows, not days
    assert scores.champion == 2.0


def test_quantile_metrics_read_the_quantiles_both_forecast() -> None:
    wide = np.column_stack([ACTUAL - 5, ACTUAL, ACTUAL + 5])
    ours = Forecasts(ACTUAL, wide, (0.1, 0.5, 0.9))
    # The champion's P10-P90 misses every row above; it has no P50 but a P25-P75.
    narrow = np.column_stack([ACTUAL - 5, ACTUAL - 2, ACTUAL - 1, ACTUAL - 0.5])
    theirs = Forecasts(ACTUAL, narrow, (0.1, 0.25, 0.75, 0.9))
    assert common_quantiles(ours, theirs) == (0.1, 0.9)
    coverage = same_rows_scores("coverage_error", ACTUAL, STAMPS, ours, theirs)
    assert coverage.challenger == pytest.approx(0.2)
    assert coverage.champion == pytest.approx(0.8)
    assert coverage.champion_windows == pytest.approx([0.8, 0.8, 0.8])
    wql = same_rows_scores("wql", ACTUAL, STAMPS, ours, theirs)
    expected = weighted_quantile_loss(ACTUAL, narrow[:, [0, 3]], (0.1, 0.9))
    assert wql.champion == pytest.approx(expected)
    ours_expected = weighted_quantile_loss(ACTUAL, wide[:, [0, 2]], (0.1, 0.9))
    assert wql.challenger == pytest.approx(ours_expected)  # its P50 is not compared


def test_what_two_models_lack_to_be_compared() -> None:
    point = Forecasts(ACTUAL)
    median = Forecasts(ACTUAL, ACTUAL[:, None], (0.5,))
    assert missing_for("mae", point, median) is None
    assert missing_for("wql", point, median) is not None
    assert missing_for("wql", median, median) is None
    assert "no central interval in common" in str(missing_for("coverage_error", median, median))
