"""A stored forecast scored against actuals, checked against the same errors by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.monitoring.scores import MAX_SERIES, combined, score_forecast
from pipeline.scoring.intervals import weighted_quantile_loss

STAMPS = pd.date_range("2026-03-01", periods=4, freq="h", tz="UTC")


def forecast() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series": ["a"] * 4 + ["b"] * 4,
            "timestamp": list(STAMPS) * 2,
            "predicted": [10.0, 11.0, 12.0, 13.0, 20.0, 20.0, 20.0, 20.0],
            "q0.1": [9.0, 10.0, 11.0, 12.0, 19.0, 19.0, 19.0, 19.0],
            "q0.5": [10.0, 11.0, 12.0, 13.0, 20.0, 20.0, 20.0, 20.0],
            "q0.9": [11.0, 12.0, 13.0, 14.0, 21.0, 21.0, 21.0, 21.0],
        }
    )


def actuals() -> pd.DataFrame:
    """Actuals for a's first three steps and b's first two; the rest not arrived."""
    return pd.DataFrame(
        {
            "series": ["a", "a", "a", "a", "b", "b", "b"],
            "timestamp": [*STAMPS[:3], STAMPS[3], STAMPS[0], STAMPS[1], STAMPS[2]],
            "actual": [10.5, 13.0, 12.0, np.nan, 18.0, 20.5, np.nan],
        }
    )


def test_only_rows_with_actuals_are_scored_as_by_hand() -> None:
    scores = score_forecast(forecast(), actuals())
    assert (scores.forecast_rows, scores.rows) == (8, 5)
    predicted = np.array([10.0, 11.0, 12.0, 20.0, 20.0])
    actual = np.array([10.5, 13.0, 12.0, 18.0, 20.5])
    errors = predicted - actual
    low = np.array([9.0, 10.0, 11.0, 19.0, 19.0])
    high = np.array([11.0, 12.0, 13.0, 21.0, 21.0])
    bounds = np.column_stack([low, predicted, high])
    assert scores.metrics == pytest.approx(
        {
            "rows": 5.0,
            "mae": np.mean(np.abs(errors)),
            "rmse": np.sqrt(np.mean(errors**2)),
            "bias": np.mean(errors),
            "coverage_80": 3 / 5,
            "wql": weighted_quantile_loss(actual, bounds, [0.1, 0.5, 0.9]),
        }
    )


@pytest.mark.parametrize("covariate", ["q1", "lead", "predicted"])
def test_covariates_named_like_a_forecasts_columns_change_nothing(covariate: str) -> None:
    """The set's covariates come with its actuals; one named ``q1`` had been read as a
    quantile, and ``lead`` or ``predicted`` had failed every scoring of the model."""
    with_covariate = actuals().assign(**{covariate: 1.0})
    assert score_forecast(forecast(), with_covariate) == score_forecast(forecast(), actuals())


def test_leads_count_from_each_series_first_step() -> None:
    scores = score_forecast(forecast(), actuals())
    by_lead = {row["lead"]: row for row in scores.by_lead}
    assert sorted(by_lead) == [1, 2, 3]
    assert by_lead[1]["rows"] == 2
    assert by_lead[1]["mae"] == pytest.approx((0.5 + 2.0) / 2)
    assert by_lead[3]["mae"] == pytest.approx(0.0)
    assert scores.by_series["b"]["mae"] == pytest.approx((2.0 + 0.5) / 2)
    assert scores.by_series["a"]["coverage_80"] == pytest.approx(2 / 3)


def test_a_set_without_series_and_a_forecast_without_actuals() -> None:
    single = forecast().query("series == 'a'").assign(series=None)
    truth = actuals().query("series == 'a'").assign(series=None)
    scores = score_forecast(single, truth)
    assert scores.rows == 3
    assert scores.metrics["mae"] == pytest.approx((0.5 + 2.0 + 0.0) / 3)
    assert score_forecast(single, truth.iloc[:0]).rows == 0


def test_only_the_worst_series_are_kept_for_large_sets() -> None:
    names = [f"s{i:04d}" for i in range(MAX_SERIES + 50)]
    rows = pd.DataFrame(
        {"series": names, "timestamp": STAMPS[0], "predicted": np.arange(len(names), dtype=float)}
    )
    truth = rows.drop(columns="predicted").assign(actual=0.0)
    kept = score_forecast(rows, truth).by_series
    assert len(kept) == MAX_SERIES
    assert min(v["mae"] for v in kept.values()) == 50.0


def test_evaluations_combine_weighted_by_rows() -> None:
    both = combined([(1, {"mae": 1.0, "rmse": 1.0}), (3, {"mae": 3.0, "rmse": 3.0})])
    assert both["mae"] == pytest.approx(2.5)
    assert both["rmse"] == pytest.approx(np.sqrt((1 + 27) / 4))
    assert combined([]) == {}
